"""Lightning's DDP on CPU processes, and sweeps that could not run with it."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, run_script

FAST = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


def test_ddp_on_two_cpu_processes_reaches_the_lesson_target_in_one_run_dir(tmp_path):
    done = run_script(
        "train.py",
        "experiment=longtext",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        *FAST,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    [run_dir] = (tmp_path / "outputs").glob("*/*")  # one run dir, not one per rank
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["final"]["val/acc"] >= 0.95  # the single-process lesson target
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # rank 0 logs, alone
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert "run dir:" in done.stdout  # printed once, by rank 0
    assert done.stdout.count("run dir:") == 1


def test_sweep_with_script_relaunching_ddp_stops_before_its_first_job(tmp_path):
    done = run_script(
        "train.py", "-m", "experiment=hihello", "trainer=ddp_cpu", "seed=0,1", cwd=tmp_path
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: trainer.strategy='ddp' is invalid: in a sweep (-m) Lightning's ddp would start the "
        "whole sweep again on every device: use trainer.strategy=ddp_spawn, or "
        "hydra/launcher=submitit_slurm (a task per device)"
    ]
    assert not (tmp_path / "outputs").exists()


def test_a_swept_ddp_job_fails_alone_with_the_reason(tmp_path):
    sweep = ["-m", "experiment=hihello", "trainer=cpu,ddp_cpu", "trainer.max_epochs=2"]
    done = run_script("train.py", *sweep, *FAST, cwd=tmp_path)

    assert done.returncode != 0
    jobs = {
        p.parent.name: json.loads(p.read_text())
        for p in (tmp_path / "outputs" / "multirun").glob("*/*/*/metrics.json")
    }
    status = {name.split("trainer=")[1].split(",")[0]: job["status"] for name, job in jobs.items()}
    assert status == {"cpu": "completed", "ddp_cpu": "failed"}


def test_a_signal_to_one_ddp_rank_stops_both_at_the_same_step(tmp_path):
    # only rank 1 is signalled: rank 0 must stop with it, not wait in its next all-reduce
    stop = ["+callbacks.stop._target_=signal_at_step.SignalAtStep", "+callbacks.stop.step=5"]
    stop += ["+callbacks.stop.signal=SIGTERM", "+callbacks.stop.rank=1"]
    env_path = f"{ROOT / 'src'}:{ROOT / 'tests'}"
    done = run_script(
        "train.py", "experiment=longtext", "trainer=ddp_cpu", "trainer.devices=2", *FAST, *stop,
        "hydra.run.dir=run", cwd=tmp_path, pythonpath=env_path,
    )  # fmt: skip

    assert done.returncode == 143, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and lines[0].startswith("interrupted by SIGTERM at epoch ")
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "interrupted"


def test_ddp_ranks_read_their_own_streams_and_together_score_the_split_once(tmp_path):
    import math
    import random

    import torch
    from torch.nn import functional as F

    from seqlab.checkpoint import datamodule_from, load_checkpoint, module_from

    words = ["to", "be", "or", "not", "that", "is", "the", "question"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, lines in (("train", 600), ("valid", 60)):
        r = random.Random(split)
        text = "".join(" ".join(r.choices(words, k=r.randint(2, 9))) + "\n" for _ in range(lines))
        (corpus / f"{split}.txt").write_text(text)
    done = run_script(
        "train.py",
        "data=corpus",
        f"data.dir={corpus}",
        "data.seq_len=8",
        "data.batch_size=4",
        "data.eval_batch_size=3",
        "model=lstm",
        "model.encoding=embedding",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "hydra.run.dir=run",
        *FAST,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    checkpoint = load_checkpoint(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    assert [part.shape[:3] for part in checkpoint["seqlab"]["carried_state"]] == [(2, 1, 4)] * 2
    # 2 ranks x 3 streams: the split cut into 6 streams, rank 0 the first 3, rank 1 the rest
    module, data = module_from(checkpoint, ValueError), datamodule_from(checkpoint, ValueError)
    val = data.splits["val"]
    streams = val[: len(val) // 6 * 6].view(6, -1).long()
    with torch.no_grad():
        scores, _ = module.net(streams[:, :-1])
    nll = F.cross_entropy(scores.reshape(-1, scores.size(-1)), streams[:, 1:].reshape(-1))
    assert summary["final"]["val/ppl"] == pytest.approx(math.exp(nll.item()), rel=1e-5)
