"""What a checkpoint is for: evaluate it, generate text with it, predict with it.

Each command needs only ``ckpt_path``: the checkpoint carries the model's build arguments, its
vocabulary and classes, and the DataModule it was trained on. A bad setting ends a command
with one line naming it, before anything is computed, and nothing is written.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from seqlab.checkpoint import datamodule_from, load_checkpoint, module_from
from seqlab.data import CLASSIFY
from seqlab.data.text import read_text
from seqlab.data.vocab import UNKNOWN_POLICIES, Vocab
from seqlab.errors import SettingError, check_choice, check_positive, exits_on_setting_error
from seqlab.inference import classify, generate, predict_next
from seqlab.launch import quiet_known_noise
from seqlab.module import SeqModule


def encode_setting(vocab: Vocab, name: str, text: str, unknown: str) -> torch.Tensor:
    """``text`` as ids; characters the model never saw are a :class:`SettingError` naming them
    (or are dropped with ``unknown=skip``, or become ``<unk>`` with ``unknown=unk``)."""
    check_choice("unknown", unknown, UNKNOWN_POLICIES)
    try:
        ids = vocab.encode(text, unknown=unknown)
    except ValueError:
        missing = ", ".join(repr(t) for t in vocab.unknown_tokens(text))
        reason = f"{vocab.unit}s not in the model's vocabulary: {missing} (unknown=skip drops them)"
        raise SettingError(name, text, reason) from None
    if len(ids) == 0:
        raise SettingError(name, text, f"expected at least one {vocab.unit} the model knows")
    return ids


@exits_on_setting_error
def generate_main(cfg: DictConfig) -> str:
    """Continue ``cfg.prompt``, printing each character as it is drawn; returns the text."""
    checkpoint = load_checkpoint(cfg.ckpt_path)
    module = module_from(checkpoint)
    _refuse_for_generation(module, cfg.ckpt_path)
    if cfg.length < 0:
        raise SettingError("length", cfg.length, "expected a number >= 0")
    check_positive("temperature", cfg.temperature)
    if cfg.top_k is not None:
        check_positive("top_k", cfg.top_k)
    prompt = encode_setting(module.vocab, "prompt", cfg.prompt, cfg.unknown)

    text = module.vocab.decode(prompt)
    print(text, end="", flush=True)
    tokens = generate(
        module.net,
        prompt,
        cfg.length,
        banned=module.vocab.special_ids,
        greedy=cfg.greedy,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    space = "" if module.vocab.level == "char" else " "
    for token in tokens:
        piece = space + module.vocab.tokens[token]
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
    texts = _texts(cfg.get("text"), cfg.get("file"))
    checkpoint = load_checkpoint(cfg.ckpt_path)
    module = module_from(checkpoint)
    # the checks first: no line is printed for a batch that has a bad text in it
    vocab = module.vocab
    inputs = [vocab.decode(encode_setting(vocab, "text", t, cfg.unknown)) for t in texts]

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


def _texts(text: str | None, file: str | None) -> list[str]:
    if (text is None) == (file is None):
        raise SettingError("text", text, "give text=... or file=... (one text per line)")
    if text is not None:
        return [str(text)]
    lines = [line for line in read_text(file, "file").splitlines() if line.strip()]
    if not lines:
        raise SettingError("file", file, "no text in it")
    return lines


@exits_on_setting_error
def eval_main(cfg: DictConfig) -> dict[str, float]:
    """The checkpoint's metrics on the data it was trained on: validation, and test if the data
    has a test split. They equal what training logged for the same checkpoint."""
    quiet_known_noise()
    checkpoint = load_checkpoint(cfg.ckpt_path)
    module = module_from(checkpoint)
    datamodule = datamodule_from(checkpoint)
    if datamodule.vocab != module.vocab:
        reason = "the data has changed since training: its vocabulary differs"
        raise SettingError("ckpt_path", cfg.ckpt_path, reason)
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    if datamodule.test_set is not None:
        metrics |= trainer.test(module, datamodule=datamodule, verbose=False)[0]

    console = Console()
    console.print(
        f"{cfg.ckpt_path}: epoch {checkpoint['epoch']}, step {checkpoint['global_step']}",
        soft_wrap=True,
    )
    table = Table("metric", "value")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.6f}")
    console.print(table)
    return metrics
