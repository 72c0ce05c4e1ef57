"""What a checkpoint is for: evaluate it, generate text with it, predict with it.

Each command needs only ``ckpt_path``: the checkpoint carries the model's build arguments, its
vocabulary and classes, and the DataModule it was trained on. Every setting is checked (types
from each tool's settings dataclass, then its ranges) and the checkpoint too, before anything
is computed; a bad one ends the command with one line naming it, and nothing is written.
"""

from __future__ import annotations

from functools import partial

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from seqlab.checkpoint import datamodule_from, load_checkpoint, module_from
from seqlab.data import CLASSIFY
from seqlab.data.text import read_text
from seqlab.data.vocab import EOS, Vocab
from seqlab.errors import SettingError, exits_on_setting_error
from seqlab.inference import classify, generate, predict_next
from seqlab.launch import check_accelerator, quiet_known_noise
from seqlab.module import SeqModule
from seqlab.settings import EvalSettings, GenerateSettings, PredictSettings, plain, settings_from


def encode_setting(vocab: Vocab, name: str, text: str, unknown: str) -> torch.Tensor:
    """``text`` as ids; characters the model never saw are a :class:`SettingError` naming them
    (or are dropped with ``unknown=skip``, or become ``<unk>`` with ``unknown=unk``)."""
    try:
        ids = vocab.encode(text, unknown=unknown)
    except ValueError:
        missing = ", ".join(repr(t) for t in vocab.unknown_tokens(text))
        reason = f"{vocab.unit}s not in the model's vocabulary: {missing} (unknown=skip drops them)"
        raise SettingError(name, text, reason) from None
    if len(ids) == 0:
        raise SettingError(name, text, f"expected at least one {vocab.unit} the model knows")
    return ids


def _with_text(cfg: DictConfig, *names: str) -> dict:
    """The tool's settings; a number given as a text (prompt=42) is that text."""
    values = plain(cfg)
    for name in names:
        if type(values.get(name)) is int:
            values[name] = str(values[name])
    return values


def _load(ckpt_path: str) -> tuple[dict, SeqModule]:
    checkpoint = load_checkpoint(ckpt_path)
    return checkpoint, module_from(checkpoint, partial(SettingError, "ckpt_path", ckpt_path))


@exits_on_setting_error
def generate_main(cfg: DictConfig) -> str:
    """Continue ``cfg.prompt``, printing each token as it is drawn; returns the text."""
    settings = settings_from(GenerateSettings, _with_text(cfg, "prompt"))
    _, module = _load(settings.ckpt_path)
    _refuse_for_generation(module, settings.ckpt_path)
    vocab = module.vocab
    prompt = encode_setting(vocab, "prompt", settings.prompt, settings.unknown)

    # the prompt as typed: an unknown character the model reads as <unk> is shown as itself
    known = [
        t for t in vocab.split(settings.prompt) if settings.unknown != "skip" or t in vocab.index
    ]
    space = "" if vocab.level == "char" else " "
    text = space.join(known)
    print(text, end="", flush=True)
    tokens = generate(
        module.net,
        prompt,
        settings.length,
        banned=vocab.special_ids,
        greedy=settings.greedy,
        temperature=settings.temperature,
        top_k=settings.top_k,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    for token in tokens:
        word = vocab.tokens[token]
        # a word-level corpus's <eos> is a line's end: written as one
        after = "" if text.endswith("\n") else space
        piece = "\n" if word == EOS else after + word
        print(piece, end="", flush=True)  # streamed: a long text shows as it is written
        text += piece
    print()
    return text


def _refuse_for_generation(module: SeqModule, ckpt_path: str) -> None:
    if module.hparams.task == CLASSIFY:
        classes = ", ".join(module.class_names)
        raise SettingError(
            "ckpt_path",
            ckpt_path,
            f"a classifier (classes {classes}) cannot generate text: use scripts/predict.py",
        )
    if module.hparams.bidirectional:
        raise SettingError(
            "ckpt_path",
            ckpt_path,
            "the model is bidirectional: each prediction has seen the characters after it, "
            "so it cannot write text left to right",
        )


@exits_on_setting_error
def predict_main(cfg: DictConfig) -> list[str]:
    """Label and probability of each text (classifier), or its next characters (next-character
    model); one tab-separated line per text. Returns the lines."""
    settings = settings_from(PredictSettings, _with_text(cfg, "text"))
    texts = _texts(settings)
    checkpoint, module = _load(settings.ckpt_path)
    # the checks first: no line is printed for a batch that has a bad text in it
    vocab = module.vocab
    inputs = [vocab.decode(encode_setting(vocab, "text", t, settings.unknown)) for t in texts]

    if module.hparams.task == CLASSIFY:
        results = classify(module.net, vocab, module.class_names, inputs)
        lines = [f"{t}\t{label}\t{p:.4f}" for t, (label, p) in zip(texts, results, strict=True)]
    else:
        # a model trained on windows of seq_len reads a longer text window by window
        window = checkpoint["seqlab"]["datamodule"].get("seq_len")
        predicted = [predict_next(module.net, vocab, x, window) for x in inputs]
        lines = [f"{t}\t{p}" for t, p in zip(texts, predicted, strict=True)]
    for line in lines:
        print(line)
    return lines


def _texts(settings: PredictSettings) -> list[str]:
    if settings.text is not None:
        return [settings.text]
    assert settings.file is not None  # PredictSettings asks for one of the two
    lines = [line for line in read_text(settings.file, "file").splitlines() if line.strip()]
    if not lines:
        raise SettingError("file", settings.file, "no text in it")
    return lines


@exits_on_setting_error
def eval_main(cfg: DictConfig) -> dict[str, float]:
    """The checkpoint's metrics on the data it was trained on: validation, and test if the data
    has a test split. They equal what training logged for the same checkpoint."""
    quiet_known_noise()
    settings = settings_from(EvalSettings, plain(cfg))
    check_accelerator({"accelerator": settings.accelerator, "devices": 1}, prefix="")
    checkpoint, module = _load(settings.ckpt_path)
    fail = partial(SettingError, "ckpt_path", settings.ckpt_path)
    datamodule = datamodule_from(checkpoint, fail)
    if datamodule.vocab != module.vocab:
        raise fail("the data has changed since training: its vocabulary differs")
    trainer = pl.Trainer(
        accelerator=settings.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    if datamodule.has_test:
        metrics |= trainer.test(module, datamodule=datamodule, verbose=False)[0]

    console = Console()
    console.print(
        f"{settings.ckpt_path}: epoch {checkpoint['epoch']}, step {checkpoint['global_step']}",
        soft_wrap=True,
    )
    table = Table("metric", "value")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.6f}")
    console.print(table)
    return metrics
