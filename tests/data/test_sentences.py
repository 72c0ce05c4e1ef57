"""data=sentences: SST-2 splits, a vocabulary from train only, padding, buckets, bad files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
from conftest import QUIET, compose_train

from seqlab.corpora import corpus_path
from seqlab.data import PAD, UNK, SentencesDataModule
from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet
from seqlab.train import train

SST2 = Path(corpus_path("sst2"))  # packaged, gzip-compressed: tests/test_corpora.py reads it whole

TRAIN = [
    ("1", "a good film"),
    ("0", "a bad film"),
    ("1", "so good , so very good"),
    ("0", "worse than bad"),
    ("1", "good fun"),
    ("0", "bad , bad acting and a bad plot"),
]
DEV = [("1", "a good plot"), ("0", "dreadful and bad")]
TEST = [("0", "bad"), ("1", "very good fun")]


def _write(folder: Path, name: str, rows: list[tuple[str, str]], header: str = "label\tsentence"):
    folder.mkdir(exist_ok=True)
    lines = [header, *("\t".join(row) for row in rows)]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A folder of train.tsv, dev.tsv and test.tsv with a handful of sentences each."""
    folder = tmp_path / "tiny"
    for name, rows in [("train.tsv", TRAIN), ("dev.tsv", DEV), ("test.tsv", TEST)]:
        _write(folder, name, rows)
    return folder


@pytest.fixture(scope="module")
def sst2() -> SentencesDataModule:
    return SentencesDataModule(dir=str(SST2), batch_size=32)


def test_vocabulary_and_classes_come_from_train_only(tiny):
    dm = SentencesDataModule(dir=str(tiny))

    assert "dreadful" not in dm.vocab.index and "plot" in dm.vocab.index
    ids, target = dm.val_set[1]  # "dreadful and bad", label 0
    assert dm.vocab.decode(ids) == f"{UNK} and bad" and target == 0
    assert dm.class_names == ["0", "1"]


def test_min_freq_and_max_size_limit_the_vocabulary(tiny):
    frequent = SentencesDataModule(dir=str(tiny), min_freq=3).vocab.tokens
    smallest = SentencesDataModule(dir=str(tiny), max_size=4).vocab.tokens

    assert frequent == [PAD, UNK, "a", "bad", "good"]  # each seen 3 times or more in train
    assert smallest == [PAD, UNK, "bad", "good"]  # the two most frequent


def test_lowercase_folds_the_words_of_every_split(tiny):
    _write(tiny, "dev.tsv", [("1", "A GOOD plot")])

    dm = SentencesDataModule(dir=str(tiny), lowercase=True)

    assert dm.vocab.decode(dm.val_set[0][0]) == "a good plot"


def test_characters_as_tokens(tiny):
    dm = SentencesDataModule(dir=str(tiny), level="char")

    ids, _ = dm.train_set[0]
    assert dm.vocab.decode(ids) == "a good film" and len(ids) == len("a good film")


def test_padding_in_a_batch_does_not_change_a_sentences_prediction(sst2):
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            len(sst2.vocab),
            sst2.num_classes,
            many_to_one=True,
            pad_index=sst2.vocab.pad_index,
            cell="lstm",
            bidirectional=True,
            encoding="embedding",
            num_layers=2,
            hidden_size=16,
        )
    ).eval()
    batch = next(iter(sst2.val_dataloader()))
    assert (batch.lengths < batch.inputs.size(1)).any()  # some sentences are padded

    with torch.no_grad():
        padded = net(batch.inputs, batch.lengths)[0]  # (B, C)
        sentences = [sst2.val_set[i][0] for i in range(len(padded))]  # the batch, unpadded
        alone = [net(ids[None], torch.tensor([len(ids)]))[0][0] for ids in sentences]

    torch.testing.assert_close(padded, torch.stack(alone))


def test_buckets_batch_similar_lengths_and_cover_each_sentence_once_per_epoch(sst2):
    torch.manual_seed(0)
    loader = SentencesDataModule(dir=str(SST2), bucket=True).train_dataloader()
    buckets = loader.batch_sampler

    epoch_0, again = list(buckets), list(buckets)
    buckets.sampler.set_epoch(1)  # as Lightning does before each epoch
    epoch_1 = list(buckets)

    for epoch in (epoch_0, epoch_1):
        assert sorted(i for batch in epoch for i in batch) == list(range(6920))
    assert epoch_0 == again and epoch_0 != epoch_1  # the order follows seed + epoch only
    spread = [int(sst2.train_lengths[b].max() - sst2.train_lengths[b].min()) for b in epoch_0]
    assert sum(s <= 1 for s in spread) >= 0.95 * len(spread)  # one or two lengths a batch
    padded = sum(batch.inputs.numel() for batch in loader)
    shuffled = sum(batch.inputs.numel() for batch in sst2.train_dataloader())
    assert padded < 1.05 * sst2.train_lengths.sum() < 0.6 * shuffled


def test_token_dropout_reads_training_words_as_unk_and_leaves_dev_alone():
    torch.manual_seed(0)
    dm = SentencesDataModule(dir=str(SST2), token_dropout=0.25)
    unk = dm.vocab.index[UNK]

    batch = next(iter(dm.train_dataloader()))
    dev = next(iter(dm.val_dataloader()))

    real = torch.arange(batch.inputs.size(1)) < batch.lengths[:, None]  # (B, T)
    dropped = (batch.inputs == unk)[real].float().mean()
    assert 0.2 < dropped < 0.3  # with min_freq=1 no training word is <unk> otherwise
    assert (batch.inputs[~real] == dm.vocab.pad_index).all()  # padding stays padding
    assert torch.equal(dev.inputs[0, : dev.lengths[0]], dm.val_set[0][0])


def test_one_file_is_split_by_val_fraction_the_same_way_every_time(tmp_path):
    names = [f"w{i}" for i in range(19)]  # one word per row: held-out rows miss the vocabulary
    rows = [f"{i % 2},sentence {name},{i}" for i, name in enumerate(names)]
    path = tmp_path / "all.csv"
    # as a spreadsheet saves it: a byte-order mark before the header
    path.write_text(
        "\n".join(["\ufefflabel,text,id", *rows, '0,"a comma, quoted",19']) + "\n", "utf-8"
    )

    def held_out(seed: int) -> list[str]:
        dm = SentencesDataModule(
            path=str(path), text_column="text", val_fraction=0.25, split_seed=seed
        )
        assert (len(dm.train_set), len(dm.val_set)) == (15, 5)  # the quoted comma is one field
        return [name for name in names if name not in dm.vocab.index]

    assert held_out(0) == held_out(0) != held_out(1)


def test_a_tiny_folder_trains_end_to_end(make_cfg, tmp_path, tiny):
    result = train(
        make_cfg(
            "data=sentences", f"data.dir={tiny}", "model=bilstm", "trainer.max_epochs=2", bare=True
        )
    )

    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert [p.text for p in result.predictions] == ["a good plot"]  # the dev sentence it can read
    assert result.predictions[0].predicted in {"0", "1"}


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_a_resumed_run_sees_the_same_buckets_and_dropped_tokens(tmp_path, tiny):
    data = ["data=sentences", f"data.dir={tiny}", "data.batch_size=2", "data.bucket=true"]
    settings = [*data, "data.token_dropout=0.3", "model=bilstm", "logger=none", *QUIET]
    full = train(compose_train(tmp_path / "full", *settings, "trainer.max_epochs=4"))
    train(compose_train(tmp_path / "run", *settings, "trainer.max_epochs=2"))

    resumed = train(
        compose_train(
            tmp_path / "run", *settings, "trainer.max_epochs=4", f"resume={tmp_path / 'run'}"
        )
    )

    assert resumed.final == full.final and resumed.best == full.best


def _bad_folder(folder: Path, case: str) -> None:
    if case == "missing column":
        _write(folder, "train.tsv", TRAIN, header="label\ttext")
    elif case == "unknown label":
        _write(folder, "dev.tsv", [*DEV, ("2", "a good film")])
    elif case == "empty split":
        _write(folder, "test.tsv", [])
    elif case == "not utf-8":
        (folder / "dev.tsv").write_bytes(b"label\tsentence\n1\tcaf\xe9 cr\xe8me\n")
    elif case == "no train file":
        (folder / "train.tsv").rename(folder / "training.tsv")
    elif case == "no dev file":
        (folder / "dev.tsv").unlink()
    elif case == "two dev files":
        _write(folder, "val.csv", DEV, header="label,sentence")


# each case breaks the tiny folder (or a setting) one way; {dir} is the folder
BAD = {
    "missing column": (
        [],
        "data.text_column='sentence' is invalid: train.tsv has no such column (it has label, text)",
    ),
    "unknown label": (
        [],
        "data.dir='{dir}' is invalid: dev.tsv line 4: label '2' is not in train (0, 1)",
    ),
    "empty split": ([], "data.dir='{dir}' is invalid: test.tsv has a header but no rows"),
    "not utf-8": ([], "data.dir='{dir}' is invalid: dev.tsv is not UTF-8 text (byte 20)"),
    "no train file": ([], "data.dir='{dir}' is invalid: no train.tsv or train.csv in it"),
    "no dev file": ([], "data.dir='{dir}' is invalid: no dev or val file (.tsv or .csv) in it"),
    "two dev files": (
        [],
        "data.dir='{dir}' is invalid: dev.tsv and val.csv are the same split: keep one",
    ),
    "tokenisation": (
        ["data.level=subword"],
        "data.level='subword' is invalid: expected one of char, word",
    ),
    "lowercase characters": (
        ["data.level=char", "data.lowercase=true"],
        "data.lowercase=True is invalid: applies to level=word only, not char",
    ),
    "min_freq 0": (["data.min_freq=0"], "data.min_freq=0 is invalid: expected a whole number >= 1"),
    "max_size 2": (
        ["data.max_size=2"],
        "data.max_size=2 is invalid: expected null or > 2 (<pad> and <unk> count)",
    ),
    "token_dropout 1": (
        ["data.token_dropout=1.0"],
        "data.token_dropout=1.0 is invalid: expected 0 <= token_dropout < 1",
    ),
}


@pytest.mark.parametrize("case, overrides, message", [(k, *v) for k, v in BAD.items()], ids=BAD)
def test_bad_data_is_one_line_naming_the_setting_before_training(
    make_cfg, tmp_path, tiny, case, overrides, message
):
    _bad_folder(tiny, case)

    with pytest.raises(SettingError) as error:
        train(make_cfg("data=sentences", f"data.dir={tiny}", *overrides))

    assert str(error.value) == message.format(dir=tiny)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([], "data.dir=None is invalid: give dir=FOLDER"),
        (
            ["data.dir=x", "data.path=y.tsv"],
            "data.path='y.tsv' is invalid: give dir or path, not both",
        ),
        (["data.path=y.tsv"], "data.path='y.tsv' is invalid: no such file"),
        (
            ["data.path=y.tsv", "data.val_fraction=1.0"],
            "data.val_fraction=1.0 is invalid: expected 0 < val_fraction < 1",
        ),
    ],
    ids=["neither", "both", "no file", "val_fraction 1"],
)
def test_data_needs_a_folder_or_one_file(make_cfg, overrides, message):
    with pytest.raises(SettingError, match=message):
        train(make_cfg("data=sentences", *overrides))


def _gzip(file: Path, name: str = "") -> Path:
    """``file`` gzip-compressed in its place, named ``name`` (default: its own name + .gz)."""
    raw = file.read_bytes()
    file.unlink()
    packed = file.with_name(name or file.name + ".gz")
    packed.write_bytes(gzip.compress(raw))
    return packed


def test_gzip_split_files_read_as_the_plain_ones(tiny):
    plain = SentencesDataModule(dir=str(tiny))
    _gzip(tiny / "dev.tsv")
    _gzip(tiny / "test.tsv", "test.tsv")  # gzip under a plain name reads too

    packed = SentencesDataModule(dir=str(tiny))

    assert packed.vocab.tokens == plain.vocab.tokens
    assert packed.val_set.targets == plain.val_set.targets
    assert packed.test_set.targets == plain.test_set.targets


@pytest.mark.parametrize("case", ["plain and gzip", "truncated"])
def test_a_gzip_split_file_that_cannot_work_is_one_line(tiny, case):
    if case == "plain and gzip":
        _write(tiny, "train.tsv.gz", TRAIN)  # beside train.tsv
        message = "train.tsv and train.tsv.gz are the same split: keep one"
    else:
        packed = _gzip(tiny / "dev.tsv")
        packed.write_bytes(packed.read_bytes()[:-12])
        message = "dev.tsv.gz is a corrupt or truncated gzip file (Compressed file ended"

    with pytest.raises(SettingError) as error:
        SentencesDataModule(dir=str(tiny))

    assert str(error.value).startswith(f"dir='{tiny}' is invalid: {message}")
    assert "\n" not in str(error.value)
