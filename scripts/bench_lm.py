"""seqlab's wikitext2 recipe vs. word_language_model's algorithm as a plain PyTorch loop.

    python scripts/bench_lm.py                # a quarter of an epoch each, then full validation
    python scripts/bench_lm.py --fraction 1   # one whole epoch each
    python scripts/bench_lm.py --dropout 0    # no random masks: the two must agree to rounding
    python scripts/bench_lm.py --compare adaptive --fraction 1   # full vs adaptive softmax

Both train word_language_model's default recipe on WikiText-2 (the copy packaged with seqlab):
embedding 200, 2-layer LSTM of 200, dropout 0.2, uniform init 0.1, SGD at lr 20, gradient norm
clipped at 0.25, 20 streams of BPTT length 35, the state detached every batch; then both score
the whole validation split with 10 streams, the state carried. seqlab runs `experiment=wikitext2`
through `seqlab.train.train` (what `scripts/train.py` calls) with its default logging,
checkpoints and callbacks. The plain loop reads the corpus, batchifies it, trains and evaluates
as word_language_model's `main.py` does, seq-first, with its own vocabulary (in seqlab's order,
most frequent first, so the same seed gives both the same initial weights; the dropout masks
differ). The first `--warmup` steps of each are not timed.

`--compare adaptive` runs seqlab twice instead: `experiment=wikitext2` (the full softmax over
33,278 words) and `experiment=wikitext2_adaptive` (the same recipe with `model.head=adaptive`),
the same seed for both (the same embedding and LSTM weights; the output layers differ).
"""

from __future__ import annotations

import argparse
import gzip
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import nn

from seqlab.callbacks.step_timer import StepTimer
from seqlab.corpora import corpus_path

ROOT = Path(__file__).resolve().parents[1]
EMBED, HIDDEN, LAYERS, DROPOUT, LR, CLIP, BPTT, BATCH, EVAL_BATCH = (
    200,
    200,
    2,
    0.2,
    20,
    0.25,
    35,
    20,
    10,
)


def read_corpus(path: Path) -> list[str]:
    """word_language_model's Corpus.tokenize: words of each line, then <eos>."""
    with gzip.open(path, "rt", encoding="utf8") as file:
        return [word for line in file for word in [*line.split(), "<eos>"]]


def dictionary(words: list[str]) -> dict[str, int]:
    """The training words, most frequent first, ties in order of appearance: seqlab's order,
    so that the same seed gives both sides the same initial weights."""
    counts = Counter(words)
    return {word: i for i, word in enumerate(sorted(counts, key=lambda w: -counts[w]))}


class InitialWeights(pl.Callback):
    """The sum of seqlab's initial embedding and head weights (built by Hydra in train())."""

    sums: ClassVar[list[float]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = pl_module.net
        InitialWeights.sums = [net.embedding.weight.sum().item(), net.head[-1].weight.sum().item()]


def batchify(data: torch.Tensor, streams: int) -> torch.Tensor:
    """(N, S): word_language_model's batchify, one column per stream."""
    n = data.size(0) // streams
    return data[: n * streams].view(streams, -1).t().contiguous()


class RNNModel(nn.Module):
    """word_language_model's RNNModel for an LSTM, untied."""

    def __init__(self, ntoken: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, EMBED)
        self.rnn = nn.LSTM(EMBED, HIDDEN, LAYERS, dropout=dropout)
        self.decoder = nn.Linear(HIDDEN, ntoken)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x: torch.Tensor, hidden: tuple) -> tuple[torch.Tensor, tuple]:
        output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(output)).log_softmax(-1), hidden  # (T, S, V)


def plain_loop(steps: int, warmup: int, dropout: float) -> dict[str, float]:
    torch.manual_seed(0)
    root = Path(corpus_path("wikitext-2"))
    words = read_corpus(root / "train.txt.gz")
    index = dictionary(words)
    train = batchify(torch.tensor([index[w] for w in words]), BATCH)
    valid_ids = [index[w] for w in read_corpus(root / "valid.txt.gz")]
    valid = batchify(torch.tensor(valid_ids), EVAL_BATCH)
    model, criterion = RNNModel(len(index), dropout), nn.NLLLoss()
    initial = [model.encoder.weight.sum().item(), model.decoder.weight.sum().item()]

    def zero_state(streams: int) -> tuple:
        return tuple(torch.zeros(LAYERS, streams, HIDDEN) for _ in range(2))

    model.train()
    hidden = zero_state(BATCH)
    for batch, i in enumerate(range(0, train.size(0) - 1, BPTT)):
        if batch == steps:
            break
        if batch == warmup:
            started = time.perf_counter()
        length = min(BPTT, train.size(0) - 1 - i)
        data, targets = train[i : i + length], train[i + 1 : i + 1 + length].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)  # repackage_hidden
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output.view(-1, len(index)), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-LR)
    trained = time.perf_counter() - started

    model.eval()
    total, hidden = 0.0, zero_state(EVAL_BATCH)
    with torch.no_grad():
        for i in range(0, valid.size(0) - 1, BPTT):
            length = min(BPTT, valid.size(0) - 1 - i)
            data, targets = valid[i : i + length], valid[i + 1 : i + 1 + length].reshape(-1)
            output, hidden = model(data, hidden)
            total += length * criterion(output.view(-1, len(index)), targets).item()
    val_loss = total / (valid.size(0) - 1)
    return {
        "tokens_per_s": (steps - warmup) * BATCH * BPTT / trained,
        "val_ppl": math.exp(val_loss),
        "vocab": len(index),
        "initial": initial,
    }


def seqlab_run(
    steps: int, warmup: int, dropout: float, experiment: str = "wikitext2"
) -> dict[str, float]:
    from hydra import compose, initialize_config_dir

    from seqlab.train import train

    StepTimer.warmup = warmup
    # the full softmax's head is one linear layer, whose initial weights the plain loop's match
    weights = ["+callbacks.initial._target_=__main__.InitialWeights"]
    weights = weights if experiment == "wikitext2" else []
    with tempfile.TemporaryDirectory() as run_dir:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.output_dir={run_dir}",
                    f"experiment={experiment}",
                    f"model.dropout={dropout}",
                    "trainer.max_epochs=1",
                    f"+trainer.limit_train_batches={steps}",
                    "+trainer.num_sanity_val_steps=0",
                    "+callbacks.timer._target_=seqlab.callbacks.step_timer.StepTimer",
                    *weights,
                ],
            )
        result = train(cfg)
    marks = StepTimer.marks
    trained = marks["timed_end"] - marks["timed_start"]
    return {
        "tokens_per_s": (steps - warmup) * BATCH * BPTT / trained,
        "val_ppl": result.final["val/ppl"],
    }


def timed(run: Callable[[], dict[str, float]]) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    return run(), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.25, help="of an epoch (0.25)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed first steps (20)")
    parser.add_argument(
        "--dropout",
        type=float,
        default=DROPOUT,
        help="0.2, the recipe's; 0: both sides deterministic, the same perplexity to rounding",
    )
    parser.add_argument(
        "--compare",
        choices=("plain", "adaptive"),
        default="plain",
        help="plain: seqlab vs the plain loop (default); adaptive: full vs adaptive softmax",
    )
    args = parser.parse_args()
    epoch = math.ceil((2_088_628 // BATCH - 1) / BPTT)  # 2,984 batches
    steps = max(round(epoch * args.fraction), args.warmup + 1)
    if not 0 < args.fraction <= 1:
        raise SystemExit(f"error: --fraction {args.fraction}: expected 0 < fraction <= 1")

    if args.compare == "plain":
        first = ("plain PyTorch loop", *timed(lambda: plain_loop(steps, args.warmup, args.dropout)))
        second = ("seqlab", *timed(lambda: seqlab_run(steps, args.warmup, args.dropout)))
    else:
        first = ("full softmax", *timed(lambda: seqlab_run(steps, args.warmup, args.dropout)))
        second = (
            "adaptive softmax",
            *timed(lambda: seqlab_run(steps, args.warmup, args.dropout, "wikitext2_adaptive")),
        )

    (name, base, _), (other_name, other, _) = first, second
    vocabulary = f", vocabulary {base['vocab']:,}" if "vocab" in base else ""
    print(
        f"wikitext2 recipe, dropout {args.dropout:g}: {steps:,} of {epoch:,} steps "
        f"({args.fraction:g} epoch), {torch.get_num_threads()} torch threads{vocabulary}"
    )
    print(f"                       {'tokens/s':>10} {'val ppl':>10} {'wall s':>8}")
    for row, side, wall in (first, second):
        print(f"  {row:<20} {side['tokens_per_s']:10,.0f} {side['val_ppl']:10.2f} {wall:8.0f}")
    ratio = other["tokens_per_s"] / base["tokens_per_s"]
    ppl = other["val_ppl"] / base["val_ppl"]
    print(f"  {other_name.split()[0] + ' / ' + name.split()[0]:<20} {ratio:10.3f} {ppl:10.3f}")
    if args.compare == "plain":
        same = all(
            math.isclose(x, y, rel_tol=1e-6)
            for x, y in zip(base["initial"], InitialWeights.sums, strict=True)
        )
        print(f"  the same initial weights: {'yes' if same else 'no'} (dropout masks differ)")


if __name__ == "__main__":
    main()
