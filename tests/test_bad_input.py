"""A bad setting stops the run before training with one line naming key, value and choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import QUIET, ROOT, compose_train, snapshot

from seqlab.errors import SettingError
from seqlab.train import train

CASES = {
    "unknown cell": (
        ["model.cell=transformer"],
        "model.cell='transformer' is invalid: expected one of rnn, lstm, gru",
    ),
    "an optimizer that is not one": (
        ["optimizer._target_=torch.nn.Linear"],
        "optimizer._target_='torch.nn.Linear' is invalid: "
        "expected a subclass of torch.optim.optimizer.Optimizer",
    ),
    "unknown encoding": (
        ["model.encoding=bytes"],
        "model.encoding='bytes' is invalid: expected one of onehot, embedding",
    ),
    "unknown nonlinearity": (
        ["model.nonlinearity=sigmoid"],
        "model.nonlinearity='sigmoid' is invalid: expected one of tanh, relu",
    ),
    "relu on an lstm": (
        ["model=lstm", "model.nonlinearity=relu"],
        "model.nonlinearity='relu' is invalid: applies to cell=rnn only, not lstm",
    ),
    "head none, wrong size": (
        ["model.head=none", "model.hidden_size=32"],
        "model.hidden_size=32 is invalid: head=none makes the RNN outputs the 5 class scores, "
        "so hidden_size must be 5",
    ),
    "head none, bidirectional": (
        ["model.head=none", "model.bidirectional=true"],
        "model.hidden_size=32 is invalid: head=none makes the RNN outputs the 5 class scores; "
        "hidden_size x 2 directions cannot be 5: use head=fc",
    ),
    "zero hidden size": (
        ["model.hidden_size=0"],
        "model.hidden_size=0 is invalid: expected a number > 0",
    ),
    "negative layers": (
        ["model.num_layers=-1"],
        "model.num_layers=-1 is invalid: expected a number > 0",
    ),
    "zero lr": (["optimizer.lr=0"], "optimizer.lr=0 is invalid: expected a number > 0"),
    "negative lr": (["optimizer.lr=-0.1"], "optimizer.lr=-0.1 is invalid: expected a number > 0"),
    "dropout of one": (
        ["model.dropout=1.0"],
        "model.dropout=1.0 is invalid: expected 0 <= dropout < 1",
    ),
    "negative dropout": (
        ["model.dropout=-0.1"],
        "model.dropout=-0.1 is invalid: expected 0 <= dropout < 1",
    ),
    "zero seq_len": (
        ["data=longtext", "data.seq_len=0"],
        "data.seq_len=0 is invalid: expected 1 <= seq_len < 180 (text)",
    ),
    "seq_len as long as the text": (
        ["data=longtext", "data.seq_len=180"],
        "data.seq_len=180 is invalid: expected 1 <= seq_len < 180 (text)",
    ),
    "empty text": (
        ["data=charseq", "data.text=''"],
        "data.text='' is invalid: expected a text of at least 2 characters",
    ),
    "unknown metric": (
        ["optimized_metric=val/f1"],
        "optimized_metric='val/f1' is invalid: expected one of train/loss",
    ),
    "metric the task never logs": (
        ["data=sentiment", "optimized_metric=val/bpc"],
        "optimized_metric='val/bpc' is invalid: "
        "a classify run logs train/loss, train/acc, val/loss, val/acc",
    ),
}


@pytest.mark.parametrize("overrides, message", CASES.values(), ids=CASES.keys())
def test_bad_setting_is_one_line_naming_it_before_anything_is_written(
    make_cfg, tmp_path, overrides, message
):
    with pytest.raises(SettingError) as error:
        train(make_cfg(*overrides))

    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def _text_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"caf\xe9 latin-1", "not UTF-8 text (byte 3)"),
    ],
    ids=["missing", "empty", "not utf-8"],
)
def test_bad_data_path_is_named_with_the_reason(make_cfg, tmp_path, content, reason):
    path = tmp_path / "missing.txt" if content is None else _text_file(tmp_path, content)

    with pytest.raises(SettingError) as error:
        train(make_cfg("data=longtext", f"data.path={path}"))

    assert str(error.value) == f"data.path='{path}' is invalid: {reason}"


def test_command_line_prints_one_error_line_exits_1_and_leaves_no_run_dir(tmp_path):
    (tmp_path / "outputs" / "earlier-run").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "model=gru", "model.cell=cnn"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: model.cell='cnn' is invalid: expected one of rnn, lstm, gru"
    ]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["earlier-run"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_trainer_without_a_gpu_is_one_line_before_anything_is_written(make_cfg, tmp_path):
    with pytest.raises(SettingError) as error:
        train(make_cfg("trainer=gpu", "trainer.precision=bf16-mixed"))

    assert str(error.value) == (
        "trainer.accelerator='gpu' is invalid: this machine has no CUDA GPU: use trainer=cpu, "
        "or trainer=default to take one where there is one"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, named",
    [("trainer.strategy=foo", "'foo'"), ("trainer.accelerator=foo", "foo")],
)
def test_trainer_settings_lightning_refuses_are_one_line_in_its_words(
    make_cfg, tmp_path, override, named
):
    with pytest.raises(SettingError) as error:
        train(make_cfg(override))

    assert str(error.value).startswith("trainer: ") and named in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


# --- the command line, as a user types it --------------------------------------------------
# Each case runs scripts/train.py (in-process) from a user's dir that already holds a run: the
# one line on stderr, exit status 1, and not a byte of that dir written, changed or removed.

T = "{tmp}"  # the user's dir, where the data files of these cases are

TRAIN = {
    "typo in an optional group": (
        ["experiment=hihelo"],
        "experiment='hihelo' is invalid: expected one of awd_wikitext2, charseq, hihello,",
    ),
    "typo in a group": (
        ["model=lsmt"],
        "model='lsmt' is invalid: expected one of bilstm, gru, lstm, rnn, stacked_rnn",
    ),
    "typo in a sweep's group": (
        ["-m", "hparams_search=optuan"],
        "hparams_search='optuan' is invalid: expected one of optuna",
    ),
    "typo in one option of a sweep": (
        ["-m", "model=rnn,lsmt"],
        "model='lsmt' is invalid: expected one of",
    ),
    "required value not given": (
        ["data=textfile"],
        "data.path='???' is invalid: a value is required",
    ),
    "unknown key added": (
        ["+model.hiden_size=64"],
        "model.hiden_size=64 is invalid: no such setting; expected one of cell, impl,",
    ),
    "unknown key set": (
        ["model.hiden_size=64"],
        "model.hiden_size=64 is invalid: not in the config (it has cell,",
    ),
    "float for an integer": (
        ["model.hidden_size=2.5"],
        "model.hidden_size=2.5 is invalid: expected a whole number",
    ),
    "string for an integer": (
        ["model.hidden_size=abc"],
        "model.hidden_size='abc' is invalid: expected a whole number",
    ),
    "float layers": (
        ["model.num_layers=1.5"],
        "model.num_layers=1.5 is invalid: expected a whole number",
    ),
    "string embedding size": (
        ["model=bilstm", "model.embedding_dim=abc"],
        "model.embedding_dim='abc' is invalid: expected a whole number",
    ),
    "float seq_len": (
        ["data=longtext", "data.seq_len=2.5"],
        "data.seq_len=2.5 is invalid: expected a whole number or null",
    ),
    "string batch size": (
        ["data.batch_size=abc"],
        "data.batch_size='abc' is invalid: expected a whole number",
    ),
    "float stride": (
        ["data=textfile", f"data.path={T}/corpus.txt", "data.sampling=stride", "data.stride=1.5"],
        "data.stride=1.5 is invalid: expected a whole number",
    ),
    "float steps per epoch": (
        ["data=textfile", f"data.path={T}/corpus.txt", "data.steps_per_epoch=2.5"],
        "data.steps_per_epoch=2.5 is invalid: expected a whole number or null",
    ),
    "negative workers": (
        ["data=longtext", "data.num_workers=-1"],
        "data.num_workers=-1 is invalid: expected 0 (load in this process) or more",
    ),
    "float workers": (
        ["data=longtext", "data.num_workers=1.5"],
        "data.num_workers=1.5 is invalid: expected a whole number",
    ),
    "float max_vocab": (
        ["data=textfile", f"data.path={T}/corpus.txt", "data.max_vocab=2.5"],
        "data.max_vocab=2.5 is invalid: expected a whole number or null",
    ),
    "string max_size": (
        ["data=sentences", f"data.path={T}/ok.tsv", "data.max_size=abc"],
        "data.max_size='abc' is invalid: expected a whole number or null",
    ),
    "float num_symbols": (
        ["data=memory", "data.num_symbols=2.5"],
        "data.num_symbols=2.5 is invalid: expected a whole number",
    ),
    "string data seed": (
        ["data=memory", "data.seed=abc"],
        "data.seed='abc' is invalid: expected a whole number",
    ),
    "negative split seed": (
        ["data=sentences", f"data.path={T}/ok.tsv", "data.split_seed=-1"],
        "data.split_seed=-1 is invalid: expected a whole number from 0 to 4294967295",
    ),
    "negative seed": (
        ["seed=-5"],
        "seed=-5 is invalid: expected a whole number from 0 to 4294967295",
    ),
    "string seed": (["seed=abc"], "seed='abc' is invalid: expected a whole number"),
    "seed of 2**64": (
        ["seed=18446744073709551616"],
        "seed=18446744073709551616 is invalid: expected a whole number from 0 to",
    ),
    "negative threads": (["num_threads=-1"], "num_threads=-1 is invalid: expected 1 to"),
    "string threads": (
        ["num_threads=abc"],
        "num_threads='abc' is invalid: expected a whole number or null",
    ),
    "too many threads": (["num_threads=100000"], "num_threads=100000 is invalid: expected 1 to"),
    "maybe bidirectional": (
        ["model.bidirectional=maybe"],
        "model.bidirectional='maybe' is invalid: expected true or false",
    ),
    "nan weight decay": (
        ["optimizer.weight_decay=nan"],
        "optimizer.weight_decay=nan is invalid: expected a number >= 0",
    ),
    "infinite lr": (
        ["optimizer.lr=inf"],
        "optimizer.lr=inf is invalid: expected a finite number > 0",
    ),
    "validation every 0 epochs": (
        ["trainer.check_val_every_n_epoch=0"],
        "trainer.check_val_every_n_epoch=0 is invalid: expected a whole number >= 1",
    ),
    "zero epochs": (
        ["trainer.max_epochs=0"],
        "trainer.max_epochs=0 is invalid: expected a whole number >= 1 or -1",
    ),
    "negative epochs": (
        ["trainer.max_epochs=-2"],
        "trainer.max_epochs=-2 is invalid: expected a whole number >= 1 or -1",
    ),
    "zero time budget": (
        ["trainer.max_time=00:00:00:00"],
        "trainer.max_time='00:00:00:00' is invalid: expected a duration > 0",
    ),
    "time budget not DD:HH:MM:SS": (
        ["trainer.max_time=10min"],
        "trainer.max_time='10min' is invalid: expected DD:HH:MM:SS",
    ),
    "more CPU devices than cores": (
        ["trainer=cpu", "trainer.devices=5000"],
        "trainer.devices=5000 is invalid: this machine has",
    ),
    "no devices": (
        ["trainer.devices=0"],
        "trainer.devices=0 is invalid: expected a number >= 1, -1 (all) or auto",
    ),
    "negative clip": (
        ["trainer.gradient_clip_val=-1"],
        "trainer.gradient_clip_val=-1 is invalid: expected a number >= 0, or null",
    ),
    "unknown precision": (
        ["trainer.precision=17"],
        "trainer.precision=17 is invalid: expected one of",
    ),
    "fraction of batches over 1": (
        ["+trainer.limit_train_batches=1.5"],
        "trainer.limit_train_batches=1.5 is invalid: expected a fraction",
    ),
    "zero accumulation": (
        ["+trainer.accumulate_grad_batches=0"],
        "trainer.accumulate_grad_batches=0 is invalid: expected a whole number >= 1",
    ),
    "one character": (
        ["data=charseq", "data.text=aaaa"],
        "data.text='aaaa' is invalid: its vocabulary is 'a' only",
    ),
    "one label": (
        ["data=sentiment", "data.labels=[1,1,1,1]"],
        "data.labels=['1', '1', '1', '1'] is invalid: expected two or more classes",
    ),
    "one class in a TSV": (
        ["data=sentences", f"data.path={T}/one_class.tsv"],
        "one_class.tsv has one class only ('1')",
    ),
    "every character rare": (
        ["data=textfile", f"data.path={T}/corpus.txt", "data.min_char_count=100000"],
        "its vocabulary is '<unk>' only",
    ),
    "a string for a list of texts": (
        ["data=sentiment", "data.texts=abcd"],
        "data.texts='abcd' is invalid: expected a list, each a string",
    ),
    "a null label": (
        ["data=sentiment", "data.labels=[1,null,0,1]"],
        "data.labels=[1, None, 0, 1] is invalid: expected a list, each a whole number or a string",
    ),
    "a nested label": (
        ["data=sentiment", "data.labels=[[1],0,0,1]"],
        "data.labels=[[1], 0, 0, 1] is invalid: expected a list, each",
    ),
    "an empty label": (
        ["data=sentiment", "data.labels=[1,'',0,1]"],
        "expected a non-empty label for every text",
    ),
    "text column is the label column": (
        ["data=sentences", f"data.path={T}/ok.tsv", "data.text_column=label"],
        "data.text_column='label' is invalid: the text and the label must be two columns",
    ),
    "repeated header column": (
        ["data=sentences", f"data.path={T}/dup.tsv"],
        "dup.tsv: column 'label' appears more than once in the header",
    ),
    "row without a label": (
        ["data=sentences", f"data.path={T}/empty_label.tsv"],
        "empty_label.tsv line 3: no label in label",
    ),
    "maybe bucket": (
        ["data=sentences", f"data.path={T}/ok.tsv", "data.bucket=maybe"],
        "data.bucket='maybe' is invalid: expected true or false",
    ),
    "negative min_char_count": (
        ["data=textfile", f"data.path={T}/corpus.txt", "data.min_char_count=-5"],
        "data.min_char_count=-5 is invalid: expected a whole number >= 1",
    ),
    "validation never reached": (
        ["trainer.check_val_every_n_epoch=5", "trainer.max_epochs=2"],
        "trainer.check_val_every_n_epoch=5 is invalid: no validation would run in trainer.max_epochs=2 epochs",
    ),
    "no validation batches": (
        ["+trainer.limit_val_batches=0"],
        "trainer.limit_val_batches=0 is invalid: no validation would run",
    ),
    "unknown top-level key": (
        ["+foo=1"],
        "foo=1 is invalid: no such setting; expected one of seed, task_name, tags,",
    ),
    "resume of no dir": (["resume=nowhere"], "resume='nowhere' is invalid: no such run dir"),
    "a text file as a checkpoint": (
        [f"ckpt_path={T}/corpus.txt"],
        "is invalid: not a checkpoint: not a whole zip archive",
    ),
    "an override that does not parse": (["optimizer.lr=[1"], "no viable alternative at input '[1'"),
    "an unresolvable interpolation": (
        ["data=longtext", "data.path=${oc.env:SEQLAB_NO_SUCH_VARIABLE}"],
        "data.path='${oc.env:SEQLAB_NO_SUCH_VARIABLE}' is invalid: KeyError raised while resolving",
    ),
    "a folder as a corpus": (["data=textfile", f"data.path={T}"], "is invalid: no such file"),
    "a folder without splits": (
        ["data=sentences", f"data.dir={T}"],
        "is invalid: no train.tsv or train.csv in it",
    ),
    "tags not a list": (["tags=abc"], "tags='abc' is invalid: expected a list, each a string"),
    "null cell": (["model.cell=null"], "model.cell=None is invalid: expected a string"),
    "typo in the optimizer group": (
        ["optimizer=adma"],
        "optimizer='adma' is invalid: expected one of adam, adamw, nt_asgd, rmsprop, sgd",
    ),
    "unknown optimizer argument": (
        ["+optimizer.foo=1"],
        "optimizer.foo=1 is invalid: no such setting; expected one of lr, betas, eps, "
        "weight_decay, amsgrad,",
    ),
    "an Adam argument given to SGD": (
        ["optimizer=sgd", "+optimizer.betas=[0.9,0.99]"],
        "optimizer.betas=[0.9, 0.99] is invalid: no such setting; expected one of lr, momentum,",
    ),
    "string lr": (
        ["optimizer.lr=abc"],
        "optimizer.lr='abc' is invalid: expected a number or Tensor",
    ),
    "a momentum torch refuses": (
        ["optimizer=sgd", "optimizer.momentum=-1"],
        "error: optimizer: Invalid momentum value: -1",
    ),
    "old model.lr": (
        ["model.lr=0.1"],
        "model.lr=0.1 is invalid: moved: use optimizer.lr=0.1 "
        "(optimizer=NAME picks the class from conf/optimizer/)",
    ),
    "old model.lr added": (
        ["+model.lr=0.1"],
        "model.lr=0.1 is invalid: moved: use optimizer.lr=0.1",
    ),
    "old model.optimizer": (
        ["model.optimizer=sgd"],
        "model.optimizer=sgd is invalid: moved: use optimizer=sgd",
    ),
    "old model.weight_decay": (
        ["model.weight_decay=0.01"],
        "model.weight_decay=0.01 is invalid: moved: use optimizer.weight_decay=0.01",
    ),
    "unknown scheduler argument": (
        ["scheduler=step", "+scheduler.foo=1"],
        "scheduler.foo=1 is invalid: no such setting; expected one of step_size, gamma, last_epoch",
    ),
    "a scheduler setting without a scheduler": (
        ["scheduler.factor=0.25"],
        "scheduler.factor=0.25 is invalid: not in the config (it has no keys)",
    ),
    "scheduler interval of an hour": (
        ["scheduler=step", "scheduler.interval=hour"],
        "scheduler.interval='hour' is invalid: expected one of epoch, step",
    ),
    "scheduler watching no metric": (
        ["scheduler=plateau", "scheduler.monitor=val/f1"],
        "scheduler.monitor='val/f1' is invalid: expected one of train/loss, train/acc,",
    ),
    "plateau without a metric": (
        ["scheduler=plateau", "scheduler.monitor=null"],
        "scheduler.monitor=None is invalid: ReduceLROnPlateau steps on a metric",
    ),
    "plateau stepped every step": (
        ["scheduler=plateau", "scheduler.interval=step"],
        "scheduler.interval='step' is invalid: val/loss is logged once an epoch: "
        "use scheduler.interval=epoch",
    ),
    "plateau minimising an accuracy": (
        ["scheduler=plateau", "scheduler.monitor=val/acc"],
        "scheduler.mode='min' is invalid: val/acc is better higher: use scheduler.mode=max",
    ),
    "plateau on a metric the task never logs": (
        ["experiment=sentiment", "scheduler=plateau", "scheduler.monitor=val/bpc"],
        "scheduler.monitor='val/bpc' is invalid: a classify run logs",
    ),
    "a factor torch refuses": (
        ["scheduler=plateau", "scheduler.factor=1.0"],
        "error: scheduler: Factor should be < 1.0.",
    ),
    "steps of zero epochs": (
        ["scheduler=step", "scheduler.step_size=0"],
        "scheduler.step_size=0 is invalid: expected a whole number >= 1",
    ),
    "a scheduler that is not one": (
        ["scheduler=step", "scheduler._target_=torch.optim.SGD"],
        "scheduler._target_='torch.optim.SGD' is invalid: expected a subclass of "
        "torch.optim.lr_scheduler.LRScheduler",
    ),
    "maybe tie_weights": (
        ["model.tie_weights=maybe"],
        "model.tie_weights='maybe' is invalid: expected true or false",
    ),
    "tied weights of two sizes": (
        ["model.encoding=embedding", "model.embedding_dim=200", "model.tie_weights=true"],
        "model.tie_weights=True is invalid: the head's input is hidden_size x directions = 32, "
        "so embedding_dim must be 32, not 200",
    ),
    "tied weights on one-hot inputs": (
        ["model.tie_weights=true"],
        "model.tie_weights=True is invalid: needs encoding=embedding, not onehot",
    ),
    "tied weights on a classifier": (
        ["experiment=sentiment", "model.tie_weights=true"],
        "model.tie_weights=True is invalid: needs a next-token model",
    ),
    "string init_range": (
        ["model.init_range=abc"],
        "model.init_range='abc' is invalid: expected a number or null",
    ),
    "negative init_range": (
        ["model.init_range=-0.1"],
        "model.init_range=-0.1 is invalid: expected a number > 0",
    ),
    "a corpus without a train file": (
        ["data=corpus", f"data.dir={T}/no_train"],
        f"data.dir='{T}/no_train' is invalid: no train file: looked for train.txt, "
        "ptb.train.txt, wiki.train.tokens, train.tokens (or .gz)",
    ),
    "a corpus with an empty split": (
        ["data=corpus", f"data.dir={T}/empty_valid"],
        f"data.dir='{T}/empty_valid/valid.txt' is invalid: the file is empty",
    ),
    "a corpus word training never saw": (
        ["data=corpus", f"data.dir={T}/unseen_word"],
        f"data.dir='{T}/unseen_word' is invalid: valid.txt has the word 'that', which the "
        "training split does not: data.unknown=unk reads such tokens as <unk>",
    ),
    "seq_len as long as a stream": (
        ["data=corpus", f"data.dir={T}/words", "data.seq_len=100"],
        "data.seq_len=100 is invalid: expected seq_len < 100: the val split's 1,000 tokens make "
        "10 streams (eval_batch_size) of 100 tokens",
    ),
    "no evaluation streams": (
        ["data=corpus", f"data.dir={T}/words", "data.eval_batch_size=0"],
        "data.eval_batch_size=0 is invalid: expected a number > 0",
    ),
    "perplexity of a character model": (
        ["experiment=longtext", "optimized_metric=val/ppl"],
        "optimized_metric='val/ppl' is invalid: a next_token on characters run logs train/loss, "
        "train/acc, val/loss, val/acc, val/bpc",
    ),
    "an adaptive head on characters sorted by code point": (
        ["data=textfile", f"data.path={T}/corpus.txt", "model.head=adaptive"],
        "model.head='adaptive' is invalid: its clusters group words by frequency, and this "
        "vocabulary is not ordered most frequent first: use a word corpus "
        "(data=corpus data.level=word), or head=fc",
    ),
    "an adaptive head on a corpus's characters": (
        ["data=corpus", f"data.dir={T}/words", "data.level=char", "model.head=adaptive"],
        "model.head='adaptive' is invalid: its clusters group words by frequency",
    ),
    "an adaptive head on a classifier": (
        ["experiment=sentiment", "model.head=adaptive"],
        "model.head='adaptive' is invalid: needs a next-token model, whose head scores the "
        "vocabulary it reads; this one has 2 classes: use head=fc",
    ),
    "cutoffs not increasing": (
        ["data=corpus", f"data.dir={T}/words", "model.head=adaptive", "model.cutoffs=[3,2]"],
        "model.cutoffs=[3, 2] is invalid: expected increasing whole numbers, each > 0 and < the "
        "vocabulary's 5 tokens (most frequent first), e.g. [1]",
    ),
    "a cutoff past the vocabulary": (
        ["data=corpus", f"data.dir={T}/words", "model.head=adaptive", "model.cutoffs=[2,5]"],
        "model.cutoffs=[2, 5] is invalid: expected increasing whole numbers, each > 0 and < the "
        "vocabulary's 5 tokens",
    ),
    "a zero cutoff": (
        ["data=corpus", f"data.dir={T}/words", "model.head=adaptive", "model.cutoffs=[0]"],
        "model.cutoffs=[0] is invalid: expected increasing whole numbers, each > 0",
    ),
    "cutoffs not a list": (
        ["data=corpus", f"data.dir={T}/words", "model.head=adaptive", "model.cutoffs=2"],
        "model.cutoffs=2 is invalid: expected a list, each a whole number or null",
    ),
    "cutoffs without the adaptive head": (
        ["data=corpus", f"data.dir={T}/words", "model.cutoffs=[2]"],
        "model.cutoffs=[2] is invalid: applies to head=adaptive only, not fc",
    ),
    "a cluster projected to nothing": (
        ["data=corpus", f"data.dir={T}/words", "model.head=adaptive", "model.cutoffs=[1,2,3]"],
        "model.div_value=4.0 is invalid: with hidden_size x directions = 32, cluster 3's "
        "projection would be 32 // 4^3 = 0 wide: use a smaller div_value or fewer cutoffs",
    ),
    "an adaptive head with tied weights": (
        [
            "data=corpus",
            f"data.dir={T}/words",
            "model.head=adaptive",
            "model.encoding=embedding",
            "model.embedding_dim=32",
            "model.tie_weights=true",
        ],
        "model.tie_weights=True is invalid: needs head=fc, not adaptive",
    ),
    "devices auto for slurm": (
        ["-m", "experiment=hihello", "hydra/launcher=submitit_slurm", "trainer.devices=auto"],
        "trainer.devices='auto' is invalid: a SLURM job needs a number of devices per node (one task each)",
    ),
}


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A user's dir: an earlier run, and the data files the cases read."""
    (tmp_path / "outputs" / "earlier-run").mkdir(parents=True)
    (tmp_path / "outputs" / "earlier-run" / "metrics.json").write_text('{"status": "completed"}')
    (tmp_path / "corpus.txt").write_text("abcabd " * 500)
    (tmp_path / "ok.tsv").write_text("label\tsentence\n1\tgood\n0\tbad\n1\tfine\n0\tdull\n")
    (tmp_path / "one_class.tsv").write_text("label\tsentence\n1\tgood movie\n1\tgreat\n1\tfine\n")
    (tmp_path / "dup.tsv").write_text("label\tsentence\tlabel\n1\tgood\t1\n0\tbad\t0\n")
    (tmp_path / "empty_label.tsv").write_text("label\tsentence\n1\tgood\n\tbad\n0\tworse\n")
    corpora = {
        "words": ("to be or not to be\n" * 400, "to be or not\n" * 200),
        "no_train": (None, "to be\n"),
        "empty_valid": ("to be or not to be\n" * 400, ""),
        "unseen_word": ("to be or not to be\n" * 400, "that is the question\n"),
    }
    for name, (train_text, valid_text) in corpora.items():
        (tmp_path / name).mkdir()
        if train_text is not None:
            (tmp_path / name / "train.txt").write_text(train_text)
        (tmp_path / name / "valid.txt").write_text(valid_text)
    return tmp_path


def _one_line(done, message: str) -> None:
    assert done.status == 1, done.stderr
    assert len(done.lines) == 1, done.stderr
    assert done.lines[0].startswith("error: ") and message in done.lines[0], done.lines


@pytest.mark.parametrize("args, message", TRAIN.values(), ids=TRAIN.keys())
def test_bad_training_command_is_one_line_exit_1_and_writes_nothing(cli, user_dir, args, message):
    before = snapshot(user_dir)

    done = cli("train.py", *(a.replace(T, str(user_dir)) for a in args))

    _one_line(done, message.replace(T, str(user_dir)))
    assert snapshot(user_dir) == before


# --- the checkpoint tools ---------------------------------------------------------------------

TOOLS = {
    "float length": (
        "generate.py",
        ["prompt=hi", "length=2.5"],
        "length=2.5 is invalid: expected a whole number",
    ),
    "string length": (
        "generate.py",
        ["prompt=hi", "length=abc"],
        "length='abc' is invalid: expected a whole number",
    ),
    "negative length": (
        "generate.py",
        ["prompt=hi", "length=-1"],
        "length=-1 is invalid: expected a number >= 0",
    ),
    "infinite temperature": (
        "generate.py",
        ["prompt=hi", "temperature=inf"],
        "temperature=inf is invalid: expected a finite number > 0",
    ),
    "nan temperature": (
        "generate.py",
        ["prompt=hi", "temperature=nan"],
        "temperature=nan is invalid: expected a number > 0",
    ),
    "float top_k": (
        "generate.py",
        ["prompt=hi", "top_k=2.5"],
        "top_k=2.5 is invalid: expected a whole number or null",
    ),
    "string seed": (
        "generate.py",
        ["prompt=hi", "seed=abc"],
        "seed='abc' is invalid: expected a whole number",
    ),
    "huge seed": (
        "generate.py",
        ["prompt=hi", "seed=1180591620717411303424"],
        "seed=1180591620717411303424 is invalid: expected a whole number from 0 to 4294967295",
    ),
    "no prompt": ("generate.py", [], "prompt='???' is invalid: a value is required"),
    "maybe greedy": (
        "generate.py",
        ["prompt=hi", "greedy=maybe"],
        "greedy='maybe' is invalid: expected true or false",
    ),
    "unknown policy": (
        "generate.py",
        ["prompt=hi", "unknown=maybe"],
        "unknown='maybe' is invalid: expected one of error, unk, skip",
    ),
    "character never seen": (
        "generate.py",
        ["prompt=hx"],
        "prompt='hx' is invalid: characters not in the model's vocabulary: 'x'",
    ),
    "unknown tool setting": (
        "eval.py",
        ["+foo=1"],
        "foo=1 is invalid: no such setting; expected one of ckpt_path, accelerator",
    ),
    "unknown accelerator": (
        "eval.py",
        ["accelerator=tpu"],
        "accelerator='tpu' is invalid: expected one of cpu, gpu, cuda, mps, auto",
    ),
    "neither text nor file": ("predict.py", [], "give text=... or file=... (one text per line)"),
    "both text and file": (
        "predict.py",
        ["text=hi", "file=x.txt"],
        "give text=... or file=... (one text per line)",
    ),
    "missing file": ("predict.py", ["file=nope.txt"], "file='nope.txt' is invalid: no such file"),
}


@pytest.fixture(scope="module")
def hihello_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "hihello"
    train(compose_train(run, "experiment=hihello", *QUIET))
    return run / "checkpoints" / "best.ckpt"


@pytest.mark.parametrize("script, args, message", TOOLS.values(), ids=TOOLS.keys())
def test_bad_tool_setting_is_one_line_exit_1_and_writes_nothing(
    cli, user_dir, hihello_checkpoint, script, args, message
):
    before = snapshot(user_dir)

    done = cli(script, f"ckpt_path={hihello_checkpoint}", *args)

    _one_line(done, message)
    assert snapshot(user_dir) == before


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("generate.py", ["prompt=hi"], "ckpt_path='???' is invalid: a value is required"),
        ("eval.py", ["ckpt_path=README.md"], "ckpt_path='README.md' is invalid: not a checkpoint"),
        ("generate.py", ["ckpt_path=.", "prompt=hi"], "ckpt_path='.' is invalid: no such file"),
    ],
    ids=["no checkpoint", "a text file", "a folder"],
)
def test_tool_without_a_usable_checkpoint_is_one_line(cli, user_dir, script, args, message):
    (user_dir / "README.md").write_text("# not a checkpoint\n")
    before = snapshot(user_dir)

    _one_line(cli(script, *args), message)
    assert snapshot(user_dir) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_eval_on_a_gpu_this_machine_lacks_is_one_line(cli, user_dir, hihello_checkpoint):
    done = cli("eval.py", f"ckpt_path={hihello_checkpoint}", "accelerator=gpu")

    _one_line(
        done, "accelerator='gpu' is invalid: this machine has no CUDA GPU: use accelerator=cpu"
    )


def test_a_tiny_temperature_samples_the_most_likely_text(cli, hihello_checkpoint):
    done = cli(
        "generate.py",
        f"ckpt_path={hihello_checkpoint}",
        "prompt=hihell",
        "length=1",
        "temperature=1e-45",
    )

    assert done.status == 0 and done.stdout == "hihello\n"


def test_a_number_as_prompt_is_its_text(cli, hihello_checkpoint):
    done = cli("generate.py", f"ckpt_path={hihello_checkpoint}", "prompt=12", "unknown=skip")

    _one_line(done, "prompt='12' is invalid: expected at least one character the model knows")
