"""seqlab vs. a plain PyTorch loop: the same char-RNN on the same batches, tokens per second.

    python scripts/bench.py                           # fp32, the packaged tinyshakespeare
    python scripts/bench.py --precision bf16-mixed    # plain and seqlab, each in fp32 and bf16
    python scripts/bench.py --cell gru --rounds 7 --steps 300 --corpus my.txt --device cuda
    python scripts/bench.py --default-malloc          # both sides with glibc malloc's defaults

Both train an embedding (64) + 2 x 256 LSTM (or --cell) + linear head with Adam on batches of 32
windows of 100 characters drawn at the same random offsets. seqlab runs through
`seqlab.train.train` (what `scripts/train.py` calls) with its default logging, checkpointing and
callbacks on. Every measurement is a fresh process; `--rounds` rounds run the sides in rotating
order, so that neither gains from going first on a machine whose speed drifts, and each side is
reported as the median and the spread (lowest to highest) of its rounds, the ratios as ratios of
medians. The first `--warmup` steps of each are not timed. With bf16 the validation bpc of
seqlab's two precisions after the same steps is compared too. The plain loop sets glibc's malloc
as seqlab's `train()` does (`keep_freed_memory`, seqlab.allocator), so the ratio is the
framework's cost alone; `--default-malloc` runs both sides with glibc's defaults instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBED, LR = 64, 2e-3
PRECISIONS = {"32-true": "fp32", "bf16-mixed": "bf16"}


def plain_pytorch(args: argparse.Namespace) -> dict[str, float]:
    import torch
    from torch import nn
    from torch.nn import functional as F

    from seqlab.allocator import keep_freed_memory
    from seqlab.data import TextDataModule
    from seqlab.data.text import WindowStarts

    torch.manual_seed(0)
    # the same encoded corpus and the same per-step batches as seqlab draws
    data = TextDataModule(
        path=str(args.corpus), seq_len=args.seq_len, batch_size=args.batch, sampling="random"
    )
    loader = data.train_dataloader()
    vocab, device = len(data.vocab), args.device

    class CharRNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocab, EMBED)
            cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[args.cell]
            self.rnn = cell(EMBED, args.hidden, args.layers, batch_first=True)
            self.head = nn.Linear(args.hidden, vocab)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(self.embedding(x))[0])

    if not args.default_malloc:  # what seqlab's train() does (keep_freed_memory: true)
        keep_freed_memory()
    model = CharRNN().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    autocast = args.precision == "bf16-mixed"
    batches = iter(loader)
    for step in range(args.steps + args.warmup):
        if step == args.warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        starts, scored_from = next(batches)  # gathered on the device, as seqlab does
        batch = data.gather(WindowStarts(starts.to(device), scored_from.to(device)))
        x, y = batch.inputs.long(), batch.targets.long()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return {"tokens_per_s": args.steps * args.batch * args.seq_len / (time.perf_counter() - start)}


def seqlab_run(args: argparse.Namespace) -> dict[str, float]:
    from hydra import compose, initialize_config_dir

    from seqlab.callbacks.step_timer import StepTimer
    from seqlab.train import train

    StepTimer.warmup = args.warmup
    with tempfile.TemporaryDirectory() as run_dir:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.output_dir={run_dir}",
                    "data=textfile",
                    f"data.path={args.corpus}",
                    f"data.seq_len={args.seq_len}",
                    f"data.batch_size={args.batch}",
                    f"data.steps_per_epoch={args.steps + args.warmup}",
                    f"model={args.cell}",
                    "model.encoding=embedding",
                    f"model.embedding_dim={EMBED}",
                    f"model.hidden_size={args.hidden}",
                    f"model.num_layers={args.layers}",
                    f"optimizer.lr={LR}",
                    "trainer.max_epochs=1",
                    f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
                    "trainer.devices=1",
                    f"trainer.precision={args.precision}",
                    "+trainer.num_sanity_val_steps=0",
                    "+trainer.limit_val_batches=10",  # validation is not timed; keep it short
                    "+callbacks.timer._target_=seqlab.callbacks.step_timer.StepTimer",
                    f"keep_freed_memory={not args.default_malloc}",
                ],
            )
        started = time.perf_counter()
        result = train(cfg)
    marks = StepTimer.marks
    tokens = args.steps * args.batch * args.seq_len
    return {
        "tokens_per_s": tokens / (marks["timed_end"] - marks["timed_start"]),
        "to_first_step": marks["first_step"] - started,
        "val_bpc": result.final["val/bpc"],
    }


def measure(side: str, precision: str, args: argparse.Namespace) -> dict[str, float]:
    """One side in a fresh interpreter: nothing warmed, allocated or imported by another."""
    command = [sys.executable, __file__, "--side", side, "--precision", precision]
    for name in ("corpus", "steps", "warmup", "device", "cell", "hidden", "layers"):
        command += [f"--{name}", str(getattr(args, name))]
    command += ["--seq-len", str(args.seq_len), "--batch", str(args.batch)]
    command += ["--default-malloc"] if args.default_malloc else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{side} {precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_spread(values: list[float]) -> str:
    median = statistics.median(values)
    return (
        f"{median:10,.0f}  ({min(values):,.0f} to {max(values):,.0f}, "
        f"spread {(max(values) - min(values)) / median:5.1%})"
    )


def _cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "cpu"
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line), "cpu"
    )
    flags = set(next((line for line in info.splitlines() if line.startswith("flags")), "").split())
    units = [unit for unit in ("avx512_bf16", "amx_bf16") if unit in flags]
    return f"{name} ({', '.join(units) or 'no bf16 units'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=None, help="plain or .gz (the packaged tinyshakespeare)"
    )
    parser.add_argument("--steps", type=int, default=200, help="timed steps (200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps (10)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=list(PRECISIONS))
    parser.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--hidden", type=int, default=256, help="units per layer (256)")
    parser.add_argument("--layers", type=int, default=2, help="(2)")
    parser.add_argument("--seq-len", type=int, default=100, help="(100)")
    parser.add_argument("--batch", type=int, default=32, help="(32)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every side (5)")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="both sides with glibc malloc's defaults (seqlab: keep_freed_memory=false)",
    )
    parser.add_argument("--side", choices=["plain", "seqlab"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.corpus is None:
        from seqlab.corpora import corpus_path

        args.corpus = Path(corpus_path("tinyshakespeare.txt.gz"))
    if not args.corpus.is_file():
        sys.exit(f"error: --corpus {args.corpus}: no such file")
    if args.side:  # one measurement, asked for by the run below
        run = plain_pytorch if args.side == "plain" else seqlab_run
        print(json.dumps(run(args)))
        return

    started = time.perf_counter()  # a fresh interpreter importing what a run imports
    subprocess.run([sys.executable, "-c", "import seqlab.train"], check=True)
    imports = time.perf_counter() - started
    # bf16: the fp32 sides too, for bf16's speed-up and its accuracy beside fp32
    precisions = ["32-true"] if args.precision == "32-true" else ["32-true", args.precision]
    sides = [(side, p) for p in precisions for side in ("plain", "seqlab")]
    results: dict[tuple[str, str], list[dict[str, float]]] = {side: [] for side in sides}
    for round_ in range(args.rounds):
        for side in sides[round_ % len(sides) :] + sides[: round_ % len(sides)]:
            results[side].append(measure(*side, args))

    def median(side: str, precision: str, key: str = "tokens_per_s") -> float:
        return statistics.median(r[key] for r in results[side, precision])

    import torch

    print(
        f"char-{args.cell.upper()} (embedding {EMBED}, {args.layers} x {args.hidden}), "
        f"seq {args.seq_len}, batch {args.batch}, {args.steps} timed steps"
    )
    print(
        f"{args.device}: {_cpu() if args.device == 'cpu' else torch.cuda.get_device_name()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"malloc: {'glibc defaults' if args.default_malloc else 'keep_freed_memory'} (both sides)"
    )
    print(f"tokens/s, median of {args.rounds} rounds (each a fresh process, order rotating)")
    for side, precision in sides:
        values = [r["tokens_per_s"] for r in results[side, precision]]
        print(f"  {side:7} {PRECISIONS[precision]}  {_median_spread(values)}")
    tokens = args.batch * args.seq_len  # per step
    for precision in precisions:
        ours, plain = median("seqlab", precision), median("plain", precision)
        extra = 1000 * tokens * (1 / ours - 1 / plain)
        print(
            f"  seqlab / plain, {PRECISIONS[precision]}          {ours / plain:6.3f}"
            f"   ({extra:+.2f} ms a step)"
        )
    if len(precisions) == 2:
        bf16 = args.precision
        for side in ("plain", "seqlab"):
            ratio = median(side, bf16) / median(side, "32-true")
            print(f"  {side} bf16 / {side} fp32 {'':{8 - len(side)}}    {ratio:6.3f}")
        fp32_bpc, bf16_bpc = (
            median("seqlab", "32-true", "val_bpc"),
            median("seqlab", bf16, "val_bpc"),
        )
        print(
            f"  seqlab val bpc after {args.steps + args.warmup} steps: fp32 {fp32_bpc:.4f}, "
            f"bf16 {bf16_bpc:.4f} ({bf16_bpc / fp32_bpc - 1:+.2%})"
        )
    first = statistics.median(r["to_first_step"] for r in results["seqlab", precisions[0]])
    print(
        f"  seqlab start-up: {imports:.1f} s imports, {first:.1f} s from train() to the first step"
    )


if __name__ == "__main__":
    main()
