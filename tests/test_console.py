"""What the commands print for a user to act on: --help's groups, the end of a sweep."""

from __future__ import annotations

import re

from conftest import BARE, CONF_DIR, run_script

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
