"""logger=mlflow, logger=wandb (offline) and logger=many, read back through each tracker's files."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import struct
from pathlib import Path

import pytest
from conftest import QUIET

from seqlab.metrics import TRAIN_LOSS_STEP, VAL_LOSS, task_metrics
from seqlab.train import train

HIHELLO = ["experiment=hihello", "trainer.max_epochs=5"]


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def mlflow_run(tracking_uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([found.experiment_id])
    return client, run


def history(client, run, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]


def test_mlflow_run_holds_the_metrics_params_and_files(make_cfg, tmp_path, tracking_uri):
    train(make_cfg(*HIHELLO, "logger=mlflow", f"logger.mlflow.tracking_uri={tracking_uri}"))

    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "metrics.json").read_text())
    client, run = mlflow_run(tracking_uri, "hihello")  # one experiment per task_name
    assert run.info.status == "FINISHED"
    assert run.info.run_name == os.path.relpath(run_dir)
    losses = [value for _, value in history(client, run, VAL_LOSS)]
    assert len(losses) == summary["epochs"] == 5
    assert losses[-1] == pytest.approx(summary["final"][VAL_LOSS])
    assert min(losses) == pytest.approx(summary["best"][VAL_LOSS])
    for name in task_metrics("next_token"):  # final and best as columns to sort runs by
        assert run.data.metrics[f"best/{name}"] == pytest.approx(summary["best"][name])
    params = run.data.params  # the run's config, flattened
    assert params["model/hidden_size"] == "8" and params["optimizer/class"] == "Adam"
    assert params["task_name"] == "hihello" and params["trainer/max_epochs"] == "5"

    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert files == {"checkpoints", "metrics.json"}
    saved = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert saved == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}
    copy = client.download_artifacts(run.info.run_id, "metrics.json", str(tmp_path))
    assert Path(copy).read_text() == (run_dir / "metrics.json").read_text()  # as it ended
    assert json.loads(Path(copy).read_text())["status"] == "completed"


def test_the_mlflow_database_is_under_outputs_of_the_dir_a_run_starts_in(cli, tmp_path):
    done = cli("train.py", *HIHELLO, "logger=mlflow", *QUIET)

    assert done.status == 0, done.stderr
    _, run = mlflow_run(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}", "hihello")
    assert run.info.run_name.startswith("outputs/")  # the run dir, from where it started
    assert (tmp_path / "outputs" / "mlartifacts" / run.info.run_id / "artifacts").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]  # no ./mlruns


def test_many_gives_tensorboard_csv_and_mlflow_the_same_metrics(make_cfg, tmp_path, tracking_uri):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = ["logger=many", f"logger.mlflow.tracking_uri={tracking_uri}"]
    train(make_cfg(*HIHELLO, *overrides, "trainer.log_every_n_steps=2"))

    run_dir = tmp_path / "run"
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    with open(run_dir / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    client, run = mlflow_run(tracking_uri, "hihello")
    for name in (*task_metrics("next_token"), TRAIN_LOSS_STEP, "lr-Adam"):
        board = [(e.step, pytest.approx(e.value)) for e in events.Scalars(name)]
        table = [(int(r["step"]), pytest.approx(float(r[name]))) for r in rows if r.get(name)]
        assert board, name
        assert history(client, run, name) == board == table, name


# W&B's transaction log (run-ID.wandb): a 7-byte header, then LevelDB's log format, 32 KiB
# blocks of chunks (crc32, length, type: 1 whole, 2 first, 3 middle, 4 last) of protobuf
# Records; wandb 0.31 reads it only in its Go core, so the test reads the framing itself
WANDB_BLOCK, CHUNK = 32768, struct.Struct("<IHB")


def wandb_records(path: Path) -> list:
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, pending = [], 7, b""
    while pos + CHUNK.size <= len(data):
        left = WANDB_BLOCK - pos % WANDB_BLOCK
        _, length, kind = CHUNK.unpack_from(data, pos)
        if left < CHUNK.size or (kind == 0 and length == 0):  # a block's padding
            pos += left
            continue
        pending += data[pos + CHUNK.size : pos + CHUNK.size + length]
        pos += CHUNK.size + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_a_wandb_sweep_gives_each_job_its_own_finished_offline_run(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # put back after the test, as it was
    done = cli("train.py", "-m", *HIHELLO, "logger=wandb", "seed=0,1", *QUIET)

    assert done.status == 0, done.stderr
    jobs = sorted(p.parent for p in (tmp_path / "outputs" / "multirun").rglob("metrics.json"))
    assert len(jobs) == 2
    ids = set()
    for job in jobs:
        (offline,) = (job / "wandb").glob("offline-run-*")  # nothing was sent anywhere
        (log,) = offline.glob("run-*.wandb")
        records = wandb_records(log)
        (run,) = [r.run for r in records if r.HasField("run")]
        assert run.project == "hihello" and run.display_name == os.path.relpath(job)
        ids.add(run.run_id)
        rows = [
            {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in records
            if r.HasField("history")
        ]
        losses = [row[VAL_LOSS] for row in rows if VAL_LOSS in row]
        summary = json.loads((job / "metrics.json").read_text())
        assert len(losses) == 5 and losses[-1] == pytest.approx(summary["final"][VAL_LOSS])
        (finished,) = [r.exit for r in records if r.HasField("exit")]  # wandb.finish()
        assert finished.exit_code == 0
    assert len(ids) == 2  # the second job did not log into the first one's run


@pytest.mark.parametrize("logger, package", [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_tracker_without_its_package_is_one_line(cli, tmp_path, monkeypatch, logger, package):
    installed = importlib.util.find_spec

    def without_package(name: str, *args: object) -> object:  # the environment less one package
        return None if name == package else installed(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_package)
    done = cli("train.py", *HIHELLO, f"logger={logger}")

    assert done.status == 1
    assert done.lines == [
        f'error: logger.{logger}: needs the {package} package: pip install -e ".[{package}]"'
    ]
    assert list(tmp_path.iterdir()) == []  # nothing trained, the run dir removed
