"""Train a recurrent model: `python scripts/train.py experiment=hihello` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from seqlab.train import main


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def run(cfg: DictConfig) -> float:
    return main(cfg)


if __name__ == "__main__":
    run()
