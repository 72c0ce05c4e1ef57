"""The settings that no constructor takes: the top level of a training run, and each tool's.

Each is a dataclass: its field annotations are the types (checked by
:func:`seqlab.settings.values.settings_from` before it is built), its ``__post_init__`` the
ranges, so a value is checked in the one place that defines it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from seqlab.data.vocab import UNKNOWN_POLICIES
from seqlab.errors import SettingError, check_at_least, check_choice, check_positive, check_seed
from seqlab.metrics import METRICS, VAL_LOSS

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def _check_path(name: str, value: str | None) -> None:
    if value is not None and not value.strip():
        raise SettingError(name, value, "expected a path, or null")


@dataclass
class RunSettings:
    """conf/train.yaml's top-level keys (its groups are checked against their constructors)."""

    seed: int = 0
    task_name: str = "train"
    tags: list[str] = field(default_factory=list)
    optimized_metric: str = VAL_LOSS
    resume: str | None = None
    ckpt_path: str | None = None
    num_threads: int | None = None
    keep_freed_memory: bool = True

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_choice("optimized_metric", self.optimized_metric, METRICS)
        _check_path("resume", self.resume)
        _check_path("ckpt_path", self.ckpt_path)
        cores = os.cpu_count() or 1
        if self.num_threads is not None and not 1 <= self.num_threads <= cores:
            reason = f"expected 1 to {cores} (this machine's cores), or null"
            raise SettingError("num_threads", self.num_threads, reason)


@dataclass
class EvalSettings:
    """conf/eval.yaml."""

    ckpt_path: str
    accelerator: str = "cpu"

    def __post_init__(self) -> None:
        _check_path("ckpt_path", self.ckpt_path)
        check_choice("accelerator", self.accelerator, ACCELERATORS)


@dataclass
class GenerateSettings:
    """conf/generate.yaml."""

    ckpt_path: str
    prompt: str
    length: int = 100
    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    seed: int = 0
    unknown: str = "unk"

    def __post_init__(self) -> None:
        _check_path("ckpt_path", self.ckpt_path)
        check_at_least("length", self.length, 0)
        # any finite temperature > 0 works: sampling runs in float64 (see inference.generate)
        check_positive("temperature", self.temperature)
        if self.top_k is not None:
            check_positive("top_k", self.top_k)
        check_seed("seed", self.seed)
        check_choice("unknown", self.unknown, UNKNOWN_POLICIES)


@dataclass
class PredictSettings:
    """conf/predict.yaml: one of ``text`` and ``file``."""

    ckpt_path: str
    text: str | None = None
    file: str | None = None
    unknown: str = "unk"

    def __post_init__(self) -> None:
        _check_path("ckpt_path", self.ckpt_path)
        if (self.text is None) == (self.file is None):
            raise SettingError("text", self.text, "give text=... or file=... (one text per line)")
        _check_path("file", self.file)
        check_choice("unknown", self.unknown, UNKNOWN_POLICIES)


@dataclass
class ExportSettings:
    """conf/export.yaml."""

    ckpt_path: str
    out: str = "model.onnx"

    def __post_init__(self) -> None:
        _check_path("ckpt_path", self.ckpt_path)
        if not self.out.strip():
            raise SettingError("out", self.out, "expected a file path, e.g. model.onnx")
        if os.path.isdir(self.out):
            raise SettingError("out", self.out, "is a directory: expected a file path")
