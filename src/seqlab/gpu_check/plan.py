"""What the GPU check runs: each step's command-line overrides, budget and promised outcome.

On CUDA the budgets add up to about 7 minutes on one H200 (estimated, never measured: see the
README); ``dry_run`` runs the same steps on the CPU with budgets of seconds, for CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the lessons of the README's table, each with the outcome it promises (tests/test_lessons.py)
LESSONS = ("hihello", "charseq", "seoul", "longtext", "sentiment")
BENCH_CELLS = ("rnn", "lstm", "gru")
BENCH_PRECISIONS = ("32-true", "bf16-mixed")
# the marks of seqlab.callbacks.step_timer.StepTimer: steps, their seconds, one epoch's batches
TIMER = "+callbacks.timer._target_=seqlab.callbacks.step_timer.StepTimer"
QUIET = ["callbacks.progress_bar=null"]  # a log file, not a terminal
# --bigger: an H200 idles on 32 x 100 characters of a 2 x 256 LSTM; 4x the batch and 2x the
# width (3.4 M parameters) might buy a lower loss in the same 3 minutes. Not measured yet.
BIGGER = ["model.hidden_size=512", "data.batch_size=128"]


@dataclass
class Step:
    """One subprocess: ``spec`` is what seqlab.gpu_check.child runs, ``timeout`` its limit."""

    name: str  # the check it belongs to: lessons, bench, shakespeare, wikitext2, ddp
    spec: dict[str, Any]
    timeout: float  # seconds
    dry_run: bool
    # rows of the table this step fills, in the table's order
    rows: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = row_names(self)


def train_run(name: str, run_dir: Path, *overrides: str) -> dict[str, Any]:
    """One `scripts/train.py` command: its name in the table, its run dir, its overrides."""
    argv = [*overrides, *QUIET, f"hydra.run.dir={run_dir}"]
    return {"name": name, "run_dir": str(run_dir), "argv": argv}


def tiny_corpus(folder: Path, lines: int = 200) -> Path:
    """The first ``lines`` lines of each packaged WikiText-2 split: the dry run's corpus."""
    import gzip
    import itertools

    from seqlab.corpora import corpus_path

    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        with gzip.open(Path(corpus_path("wikitext-2")) / f"{split}.txt.gz", "rt") as text:
            head = list(itertools.islice(text, lines))
        (folder / f"{split}.txt").write_text("".join(head))
    return folder


def tiny_text(path: Path, characters: int = 20_000) -> Path:
    """The first ``characters`` of the packaged tiny shakespeare: the dry run's bench corpus."""
    import gzip

    from seqlab.corpora import corpus_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(corpus_path("tinyshakespeare.txt.gz"), "rt") as text:
        path.write_text(text.read(characters))
    return path


def plan(runs: Path, dry_run: bool, bigger: bool = False) -> list[Step]:
    """The steps in the order they run; ``runs``: where their run dirs go (and, in the dry run,
    its tiny corpora)."""
    trainer = "trainer=cpu" if dry_run else "trainer=gpu"
    # dry run: a few epochs, seconds of training, a few validation batches; on CUDA the
    # lessons' own epochs and every validation batch
    epochs = ["trainer.max_epochs=3"] if dry_run else []
    short = ["+trainer.limit_val_batches=5"] if dry_run else []

    def max_time(seconds: int) -> str:
        seconds = 5 if dry_run else seconds
        return f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}"

    lessons = [
        train_run(name, runs / "lessons" / name, f"experiment={name}", trainer, *epochs)
        for name in LESSONS
    ]
    ddp = ["trainer=ddp_cpu", *epochs] if dry_run else ["trainer=ddp"]
    ddp = ["experiment=longtext", *ddp, "trainer.devices=1"]  # NCCL (gloo) on one device
    shakespeare = ["experiment=shakespeare", trainer, max_time(180), TIMER, *short]
    shakespeare_runs = [train_run("shakespeare", runs / "shakespeare", *shakespeare)]
    if bigger:
        shakespeare_runs.append(
            train_run("shakespeare bigger", runs / "shakespeare_bigger", *shakespeare, *BIGGER)
        )
    # one epoch is 2,984 steps; max_time guards the budget, and a cut epoch is extrapolated
    wikitext2 = ["experiment=wikitext2", trainer, "trainer.max_epochs=1", max_time(90), TIMER]
    if dry_run:  # a few hundred lines of each split; a valid word training never saw: <unk>
        corpus = tiny_corpus(runs / "data" / "wikitext2_tiny")
        wikitext2 += [f"data.dir={corpus}", "data.unknown=unk", *short]
    bench = {
        "kind": "bench",
        "cells": list(BENCH_CELLS),
        "precisions": list(BENCH_PRECISIONS),
        "device": "cpu" if dry_run else "cuda",
        # the README's bench model and corpus on CUDA; a narrow one on 20,000 characters
        "corpus": str(tiny_text(runs / "data" / "shakespeare_tiny.txt")) if dry_run else None,
        "hidden": 32 if dry_run else 256,
        "seq_len": 20 if dry_run else 100,
        "batch": 8 if dry_run else 32,
        "steps": 3 if dry_run else 200,
        "warmup": 1 if dry_run else 10,
        "rounds": 1 if dry_run else 3,
    }

    def train(*runs_: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "train", "runs": list(runs_)}

    # (name, spec, timeout on CUDA, timeout in the dry run); the CUDA ones are estimates for an
    # H200 (about 40, 30, 200, 40 and 110 s expected), never measured
    steps = [
        ("lessons", train(*lessons), 120, 60),
        ("ddp", train(train_run("ddp", runs / "ddp" / "run", *ddp)), 90, 45),
        ("shakespeare", train(*shakespeare_runs), 240 * len(shakespeare_runs), 45),
        ("wikitext2", train(train_run("wikitext2", runs / "wikitext2", *wikitext2)), 150, 45),
        ("bench", bench, 150, 120),
    ]
    return [Step(name, spec, dry if dry_run else cuda, dry_run) for name, spec, cuda, dry in steps]


def row_names(step: Step) -> list[str]:
    """The table's rows a step fills."""
    spec = step.spec
    if spec["kind"] == "bench":
        return [f"bench {c} {p}" for c in spec["cells"] for p in spec["precisions"]]
    prefix = {"lessons": "lesson "}.get(step.name, "")
    return [prefix + run["name"] for run in spec["runs"]]


# the table's order: the (lessons, bench, shakespeare, wikitext2, ddp)
ORDER = ("lessons", "bench", "shakespeare", "wikitext2", "ddp")
