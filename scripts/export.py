"""A checkpoint as an ONNX model: `python scripts/export.py ckpt_path=... out=model.onnx`."""

import hydra
from omegaconf import DictConfig

import seqlab.config  # noqa: F401 - registers the resolvers the configs use
from seqlab.cli import run as one_line_errors
from seqlab.cli import settled_imports


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def run(cfg: DictConfig) -> None:
    with settled_imports():  # torch loads when the command runs, not for --help
        from seqlab.export import export_main

    export_main(cfg)


if __name__ == "__main__":
    one_line_errors(run)
