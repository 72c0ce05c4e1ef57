"""Train a recurrent model: `python scripts/train.py experiment=hihello` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

import seqlab.config  # noqa: F401 - registers the resolvers the configs use
from seqlab.cli import run as one_line_errors
from seqlab.cli import settled_imports


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def run(cfg: DictConfig) -> float:
    with settled_imports():  # torch and Lightning load when a run starts, not for --help
        from seqlab.train import main

    return main(cfg)


if __name__ == "__main__":
    one_line_errors(run)
