"""The corpora shipped in the package: whole, read through the real conf, and enough for the
experiments that use them to run from a clone with nothing beside it."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUIET, ROOT, SHARED_DATA, compose_train, needs_shared_data, run_script

from seqlab.config import instantiate_setting
from seqlab.corpora import CORPORA, corpus_path
from seqlab.data.text import read_text
from seqlab.errors import SettingError
from seqlab.train import train

SHAKESPEARE = "tinyshakespeare.txt.gz"
SPLITS = ("train", "dev", "test")


def test_packaged_shakespeare_decompresses_to_the_whole_corpus():
    text = read_text(corpus_path(SHAKESPEARE))

    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


@needs_shared_data
def test_packaged_corpora_are_the_shared_files_byte_for_byte():
    packaged = Path(corpus_path(SHAKESPEARE)).read_bytes()
    assert gzip.decompress(packaged) == (SHARED_DATA / "tinyshakespeare.txt").read_bytes()
    for split in SPLITS:
        packaged = (Path(corpus_path("sst2")) / f"{split}.tsv.gz").read_bytes()
        assert gzip.decompress(packaged) == (SHARED_DATA / "sst2" / f"{split}.tsv").read_bytes()


def test_packaged_sst2_gives_every_split_through_data_sentences(tmp_path):
    cfg = compose_train(tmp_path, "data=sentences", "data.dir=${corpus:sst2}")

    sst2 = instantiate_setting(cfg.data, "data")

    assert (len(sst2.train_set), len(sst2.val_set), len(sst2.test_set)) == (6920, 872, 1821)
    assert sst2.class_names == ["0", "1"]
    assert sst2.vocab.level == "word" and sst2.vocab.pad_index == 0
    assert len(sst2.samples) == 4
    for sample in sst2.samples:  # dev sentences the model can read as shown
        assert sample.target in sst2.class_names
        assert len(sst2.vocab.encode(sample.text)) <= 30


def test_every_listed_corpus_is_in_the_package():
    for name in CORPORA:
        assert Path(corpus_path(name)).is_absolute() and Path(corpus_path(name)).exists()


def test_an_unknown_corpus_is_one_line_naming_the_packaged_ones(make_cfg):
    with pytest.raises(SettingError) as error:
        train(make_cfg("data=textfile", "data.path=${corpus:shakespeare.txt}"))

    assert str(error.value) == (
        "data.path='${corpus:shakespeare.txt}' is invalid: corpus='shakespeare.txt': "
        "not a packaged corpus: expected one of sst2, tinyshakespeare.txt.gz, wikitext-2"
    )


@pytest.mark.parametrize("experiment", ["shakespeare", "sst2"])
def test_corpus_experiments_build_their_data_from_a_folder_with_nothing_beside_it(
    tmp_path, monkeypatch, experiment
):
    monkeypatch.chdir(tmp_path)  # no ../shared here

    data = instantiate_setting(
        compose_train(tmp_path / "run", f"experiment={experiment}").data, "data"
    )

    if experiment == "shakespeare":
        assert data.corpus.numel() == 1_115_394 and len(data.vocab) == 65
    else:
        assert len(data.train_set) == 6920 and data.class_names == ["0", "1"]


# a few steps of each: what matters is that the experiment finds its data and runs
SHORT = {
    "shakespeare": ["trainer.max_epochs=1", "data.steps_per_epoch=2"],
    "sst2": ["trainer.max_epochs=1", "+trainer.limit_train_batches=2"],
}


@pytest.mark.parametrize("experiment", list(SHORT))
def test_corpus_experiments_train_from_a_folder_with_nothing_beside_it(tmp_path, experiment):
    done = run_script(
        "train.py", f"experiment={experiment}", *SHORT[experiment],
        "+trainer.limit_val_batches=2", "logger=none", *QUIET, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    [summary] = tmp_path.glob("outputs/*/*/metrics.json")
    assert json.loads(summary.read_text())["status"] == "completed"
    assert "val/acc" in done.stdout


def test_an_installed_wheel_carries_the_corpora(tmp_path):
    pytest.importorskip("setuptools")  # the build backend, used without a network
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    pip = [sys.executable, "-m", "pip", "-q"]
    wheel = ["wheel", str(source), "-w", str(tmp_path / "wheel"), "--no-deps"]
    subprocess.run([*pip, *wheel, "--no-build-isolation"], check=True, cwd=tmp_path)
    [built] = (tmp_path / "wheel").glob("seqlab-*.whl")
    target = tmp_path / "installed"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(built)], check=True)

    # -S: no site-packages, so this checkout's editable install cannot answer instead
    probe = "from seqlab.corpora import corpus_path; print(corpus_path('sst2'))"
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True, text=True, env={"PYTHONPATH": str(target)}, check=True,
    )  # fmt: skip

    installed = Path(done.stdout.strip())
    assert installed.is_relative_to(target)
    assert sorted(p.name for p in installed.iterdir()) == [f"{s}.tsv.gz" for s in sorted(SPLITS)]
    assert read_text(str(installed.parent / SHAKESPEARE)).startswith("First Citizen:")
