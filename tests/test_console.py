"""What the commands print for a user to act on: --help's groups, the end of a sweep."""

from __future__ import annotations

import os
import re

from conftest import BARE, CONF_DIR, ROOT, run_script

# chosen for the user, not by them: tuned/ by experiment and model together, tool/ by the tools
INTERNAL = {"hydra", "tuned", "tool"}


def _groups(help_text: str) -> dict[str, list[str]]:
    """{group: options} of --help's "Configuration groups" section."""
    section = help_text.split("== Configuration groups ==")[1].split("== Config ==")[0]
    found = (re.fullmatch(r"(\w+): (.+)", line) for line in section.splitlines())
    return {m.group(1): m.group(2).split(", ") for m in found if m}


def test_help_lists_the_groups_a_user_picks_with_their_options(tmp_path):
    done = run_script("train.py", "--help", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    groups = _groups(done.stdout)
    picked = {p.name for p in CONF_DIR.iterdir() if p.is_dir()} - INTERNAL
    assert set(groups) == picked and "debug" in picked
    assert groups["debug"] == ["default", "fdr", "limit", "overfit", "profiler"]
    assert groups["experiment"] == sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
    assert not re.search(r"^(tuned|tool):", done.stdout, re.MULTILINE)
    assert done.stdout.startswith("Train a recurrent model: python scripts/train.py")
    assert "\n  _target_: seqlab.data.TextDataModule\n" in done.stdout  # the composed config


LISTING_SPY = """
import hydra._internal.hydra as core

original = core.Hydra.format_config_groups


def spied(self, *args, **kwargs):
    with open({marker!r}, "a") as out:
        out.write("listed\\n")
    return original(self, *args, **kwargs)


core.Hydra.format_config_groups = spied
"""


def test_a_run_lists_the_config_groups_only_when_help_asks(tmp_path):
    # OmegaConf resolves --help's template each time a merge reaches it: listing the groups
    # there read every option's file a few times per command, half of --cfg job's start
    marker = tmp_path / "listed.txt"
    (tmp_path / "sitecustomize.py").write_text(LISTING_SPY.format(marker=str(marker)))
    pythonpath = f"{tmp_path}{os.pathsep}{ROOT / 'src'}"

    job = run_script(
        "train.py", "experiment=hihello", "--cfg", "job", cwd=tmp_path, pythonpath=pythonpath
    )
    assert job.returncode == 0, job.stderr
    assert "text: hihello" in job.stdout and not marker.exists()

    shown = run_script("train.py", "--help", cwd=tmp_path, pythonpath=pythonpath)
    assert shown.returncode == 0, shown.stderr
    assert "experiment" in _groups(shown.stdout) and marker.exists()


def test_a_sweep_ends_with_its_dir_and_the_report_command_that_works(cli, tmp_path):
    done = cli("train.py", "-m", "experiment=hihello", "trainer.max_epochs=2", "seed=0,1", *BARE)

    assert done.status == 0, done.stderr
    *_, where, report = done.stdout.strip().splitlines()
    [sweep_dir] = (tmp_path / "outputs" / "multirun").glob("*/*")
    relative = str(sweep_dir.relative_to(tmp_path))
    assert where == f"sweep dir: {relative}"
    assert report == f"report:    python scripts/report.py {relative}"
    # the command as printed, run from the same dir
    script, *args = report.split()[2:]
    reported = run_script(script.removeprefix("scripts/"), *args, cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    assert "seed" in (sweep_dir / "report.md").read_text()
