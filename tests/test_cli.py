"""`python scripts/train.py ...` exactly as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_train_script_prints_the_prediction_and_where_the_logs_are(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=hihello"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    [run_dir] = (tmp_path / "outputs").glob("*/*")
    relative = run_dir.relative_to(tmp_path)
    tail = done.stdout.strip().splitlines()[-2:]
    assert tail == [f"run dir: {relative}", f"logs:    tensorboard --logdir {relative}"]
    assert "│ hihell │ ihello    │ ihello │ ✓  │" in done.stdout
    assert (
        json.loads((run_dir / "metrics.json").read_text())["predictions"][0]["predicted"]
        == "ihello"
    )
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_a_second_settled_import_in_a_process_freezes_nothing_more():
    """A sweep worker's next job: the last job's garbage stays collectable."""
    import gc

    import pytorch_lightning  # noqa: F401 - as in a worker that ran a job already

    from seqlab.cli import settled_imports

    frozen = gc.get_freeze_count()
    garbage = [[]]
    garbage[0].append(garbage)  # a cycle only a collection frees
    del garbage
    with settled_imports():
        pass

    assert gc.get_freeze_count() == frozen and gc.isenabled()


def test_a_launcher_whose_plugin_is_missing_is_one_line_naming_the_install(monkeypatch, tmp_path):
    from seqlab import cli

    installed = {"hydra_plugins.hydra_submitit_launcher"}  # as `pip install -e ".[slurm]"`
    monkeypatch.setattr(cli, "find_spec", lambda name: object() if name in installed else None)
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "model=rnn,lstm", "hydra/launcher=ray"])
    monkeypatch.chdir(tmp_path)
    trained = []

    try:
        cli.run(lambda: trained.append(True))
    except SystemExit as stop:
        said = str(stop.code)
    assert (
        said
        == 'error: hydra/launcher=ray needs the hydra-ray-launcher package: pip install -e ".[ray]"'
    )
    assert trained == [] and list(tmp_path.iterdir()) == []  # before Hydra made anything
    assert cli.missing_launcher(["hydra/launcher=submitit_slurm", "hydra/launcher=joblib"]) is None
