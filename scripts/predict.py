"""Labels or next characters of new text: `python scripts/predict.py ckpt_path=... text=hi`."""

import hydra
from omegaconf import DictConfig

import seqlab.config  # noqa: F401 - registers the resolvers the configs use
from seqlab.cli import run as one_line_errors
from seqlab.cli import settled_imports


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def run(cfg: DictConfig) -> None:
    with settled_imports():  # torch loads when the command runs, not for --help
        from seqlab.tools import predict_main

    predict_main(cfg)


if __name__ == "__main__":
    one_line_errors(run)
