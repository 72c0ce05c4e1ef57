"""seqlab vs. a plain PyTorch loop: the same char-RNN on the same batches, tokens per second.

    python scripts/bench.py                           # fp32, the packaged tinyshakespeare
    python scripts/bench.py --precision bf16-mixed    # plain and seqlab, each in fp32 and bf16
    python scripts/bench.py --cell gru --rounds 5 --steps 300 --corpus my.txt --device cuda
    python scripts/bench.py --default-malloc          # both sides with glibc malloc's defaults
    python scripts/bench.py -- logger=none            # more overrides for seqlab's side

Both train an embedding (64) + 2 x 256 LSTM (or --cell) + linear head with Adam on batches of 32
windows of 100 characters drawn at the same random offsets. seqlab runs through
`seqlab.train.train` (what `scripts/train.py` calls) with its default logging, checkpointing and
callbacks on, logging train/loss_step once a turn (below). The sides take turns: each round
starts every side in a fresh process, lets each run its `--warmup` untimed steps, then runs
their `--steps` timed steps in turns of `--turn` steps, one side at a time, the order rotating
from turn to turn, so that a machine whose speed drifts (other processes, a neighbour on the same
host) slows every side alike. Each side is reported as the median of its turns' tokens/s with
the middle half of them (first to third quartile), the ratios as ratios of medians; the ratio of
all turns' tokens over their seconds is printed beside. With bf16 the validation bpc of seqlab's
two precisions after the same steps is compared too. The plain loop sets glibc's malloc as
seqlab's `train()` does (`keep_freed_memory`, seqlab.allocator), so the ratio is the framework's
cost alone; `--default-malloc` runs both sides with glibc's defaults instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from seqlab.callbacks.step_timer import Turns

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
    turns = _turns(args)
    # a side run alone (gpu_check) has one turn: its steps are not synchronised one by one
    turn = args.steps if isinstance(turns, Stopwatch) else args.turn
    for step in range(args.steps + args.warmup):
        starts, scored_from = next(batches)  # gathered on the device, as seqlab does
        batch = data.gather(WindowStarts(starts.to(device), scored_from.to(device)))
        if step >= args.warmup:  # where seqlab's timer takes the step: its batch is ready
            if device == "cuda" and (step - args.warmup) % turn == 0:
                torch.cuda.synchronize()  # a turn ends when its GPU work has
            turns.at_step(step - args.warmup)
        x, y = batch.inputs.long(), batch.targets.long()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    turns.finish()
    return {"tokens_per_s": tokens_per_s(args, turns)} if isinstance(turns, Stopwatch) else {}


def seqlab_run(args: argparse.Namespace) -> dict[str, float]:
    from hydra import compose, initialize_config_dir

    from seqlab.callbacks.step_timer import StepTimer
    from seqlab.train import train

    StepTimer.warmup, StepTimer.timed_steps = args.warmup, args.steps
    StepTimer.turns = turns = _turns(args)
    alone = isinstance(turns, Stopwatch)
    # every turn holds one of the steps that log train/loss_step (50 by default)
    logging = [] if alone else [f"trainer.log_every_n_steps={args.turn}"]
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
                    *logging,
                    *getattr(args, "overrides", []),
                ],
            )
        started = time.perf_counter()
        try:
            result = train(cfg)
        finally:  # a later run in this process (gpu_check's child) times its own steps
            StepTimer.turns = None
    return {
        **({"tokens_per_s": tokens_per_s(args, turns)} if alone else {}),
        "to_first_step": StepTimer.marks["first_step"] - started,
        "val_bpc": result.final["val/bpc"],
    }


def _failed(side: Side, out: Path) -> NoReturn:
    sys.exit(f"{side[0]} {side[1]} failed:\n{Path(f'{out}.err').read_text()[-3000:]}")


class Stopwatch:
    """The timed steps of a side run alone (scripts/gpu_check.py's bench): one mark at the
    start of the first, one after the last; the plain loop calls it as seqlab's
    :class:`StepTimer` does, in place of the turns."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def at_step(self, step: int) -> None:
        if step == 0:
            self.marks["timed_start"] = time.perf_counter()

    def finish(self) -> None:
        self.marks["timed_end"] = time.perf_counter()


def tokens_per_s(args: argparse.Namespace, timed: Stopwatch) -> float:
    marks = timed.marks
    return args.steps * args.batch * args.seq_len / (marks["timed_end"] - marks["timed_start"])


def _turns(args: argparse.Namespace) -> Turns | Stopwatch:
    if not getattr(args, "turn_fds", None):
        return Stopwatch()
    from seqlab.callbacks.step_timer import Turns

    inbox, outbox = (int(fd) for fd in args.turn_fds.split(","))
    return Turns(inbox, outbox, args.turn)


Side = tuple[str, str]  # ("plain" | "seqlab", precision)


def measure_round(sides: list[Side], args: argparse.Namespace) -> dict[Side, dict]:
    """One round: every side in a fresh interpreter (nothing warmed, allocated or imported by
    another), all started together, then taking turns of ``--turn`` timed steps, one side at a
    time, the order rotating from turn to turn. Returns each side's seconds per turn and what
    its process reported at the end."""
    runs = {}
    with tempfile.TemporaryDirectory() as logs:
        for side in sides:
            to_side, from_side = os.pipe(), os.pipe()  # (read, write) each
            fds = f"{to_side[0]},{from_side[1]}"
            command = [sys.executable, __file__, "--side", side[0], "--precision", side[1]]
            for name in ("corpus", "steps", "warmup", "device", "cell", "hidden", "layers", "turn"):
                command += [f"--{name}", str(getattr(args, name))]
            command += ["--seq-len", str(args.seq_len), "--batch", str(args.batch)]
            command += ["--turn-fds", fds] + (["--default-malloc"] if args.default_malloc else [])
            command += ["--", *args.overrides]
            out = Path(logs, f"{side[0]}-{side[1]}")
            with open(f"{out}.out", "w") as stdout, open(f"{out}.err", "w") as stderr:
                process = subprocess.Popen(
                    command, stdout=stdout, stderr=stderr, pass_fds=(to_side[0], from_side[1])
                )
            os.close(to_side[0])
            os.close(from_side[1])
            runs[side] = (
                process,
                os.fdopen(to_side[1], "w"),
                os.fdopen(from_side[0], "r"),
                out,
            )

        def hear(side: Side) -> str:
            line = runs[side][2].readline()
            if not line:  # the side died: its own error says why
                runs[side][0].wait()
                _failed(side, runs[side][3])
            return line.strip()

        def tell(side: Side) -> None:
            runs[side][1].write("go\n")
            runs[side][1].flush()

        for side in sides:  # each has started up and run its untimed steps
            assert hear(side) == "ready"
        seconds: dict[Side, list[float]] = {side: [] for side in sides}
        for turn in range(args.steps // args.turn):
            for side in sides[turn % len(sides) :] + sides[: turn % len(sides)]:
                tell(side)
                seconds[side].append(float(hear(side)))
        for side in sides:  # now they may validate, save and exit, all at once
            tell(side)
        results = {}
        for side in sides:
            process, to_side, from_side, out = runs[side]
            if process.wait() != 0:
                _failed(side, out)
            to_side.close()
            from_side.close()
            reported = json.loads(Path(f"{out}.out").read_text().strip().splitlines()[-1])
            results[side] = {"turn_seconds": seconds[side], **reported}
    return results


def _median_spread(values: list[float]) -> str:
    """The median, and the middle half of the values (first to third quartile) beside it."""
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return f"{median:10,.0f}  (middle half {low:,.0f} to {high:,.0f}, {(high - low) / median:5.1%})"


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
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each of fresh processes (3)")
    parser.add_argument(
        "--turn", type=int, default=10, help="timed steps a side runs in one turn (10)"
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="both sides with glibc malloc's defaults (seqlab: keep_freed_memory=false)",
    )
    parser.add_argument(
        "--json", type=Path, help="also write every turn's seconds, side by side, to this file"
    )
    parser.add_argument("overrides", nargs="*", help="more overrides for seqlab's side (after --)")
    parser.add_argument("--side", choices=["plain", "seqlab"], help=argparse.SUPPRESS)
    parser.add_argument("--turn-fds", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.corpus is None:
        from seqlab.corpora import corpus_path

        args.corpus = Path(corpus_path("tinyshakespeare.txt.gz"))
    if not args.corpus.is_file():
        sys.exit(f"error: --corpus {args.corpus}: no such file")
    if args.turn < 1 or args.steps < args.turn or args.steps % args.turn:
        sys.exit(f"error: --turn {args.turn}: must divide --steps ({args.steps}) into whole turns")
    if args.rounds < 1:
        sys.exit(f"error: --rounds {args.rounds}: must be 1 or more")
    if args.device == "cpu" and args.cell == "lstm":
        from seqlab.precision import cpu_lstm_kernel_missing

        if missing := cpu_lstm_kernel_missing(args.precision):
            sys.exit(f"error: --precision {args.precision} with --cell lstm: {missing}")
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
    rounds = [measure_round(sides, args) for _ in range(args.rounds)]
    tokens = args.batch * args.seq_len  # per step
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "tokens_per_step": tokens,
                    "steps_per_turn": args.turn,
                    "rounds": [{" ".join(side): run[side] for side in sides} for run in rounds],
                },
                indent=1,
            )
        )

    def turns(side: Side) -> list[float]:  # tokens/s of each of the side's turns
        return [tokens * args.turn / t for run in rounds for t in run[side]["turn_seconds"]]

    def median(side: str, precision: str) -> float:
        return statistics.median(turns((side, precision)))

    def paired(precision: str) -> list[float]:  # seqlab / plain of turns run back to back
        return [
            plain / ours
            for run in rounds
            for plain, ours in zip(
                run["plain", precision]["turn_seconds"],
                run["seqlab", precision]["turn_seconds"],
                strict=True,
            )
        ]

    def overall(side: str, precision: str) -> float:  # all its turns' tokens over their seconds
        seconds = [t for run in rounds for t in run[side, precision]["turn_seconds"]]
        return tokens * args.turn * len(seconds) / sum(seconds)

    import torch

    print(
        f"char-{args.cell.upper()} (embedding {EMBED}, {args.layers} x {args.hidden}), "
        f"seq {args.seq_len}, batch {args.batch}, {args.steps} timed steps in turns of {args.turn}"
    )
    print(
        f"{args.device}: {_cpu() if args.device == 'cpu' else torch.cuda.get_device_name()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"malloc: {'glibc defaults' if args.default_malloc else 'keep_freed_memory'} (both sides)"
    )
    count = args.rounds * args.steps // args.turn
    print(
        f"tokens/s of a turn, median of {count} turns a side ({args.rounds} rounds of fresh "
        f"processes; one side at a time, the order rotating)"
    )
    for side in sides:
        print(f"  {side[0]:7} {PRECISIONS[side[1]]}  {_median_spread(turns(side))}")
    for precision in precisions:
        ours, plain = median("seqlab", precision), median("plain", precision)
        extra = 1000 * tokens * (1 / ours - 1 / plain)
        whole = overall("seqlab", precision) / overall("plain", precision)
        pairs = statistics.quantiles(paired(precision), n=4, method="inclusive")
        print(
            f"  seqlab / plain, {PRECISIONS[precision]}          {ours / plain:6.3f}"
            f"   ({extra:+.2f} ms a step; all turns' tokens over their seconds: {whole:.3f})"
        )
        print(
            f"    turn by turn, each against the other side's turn beside it: median "
            f"{pairs[1]:.3f} (middle half {pairs[0]:.3f} to {pairs[2]:.3f})"
        )
    if len(precisions) == 2:
        bf16 = args.precision
        for side in ("plain", "seqlab"):
            ratio = median(side, bf16) / median(side, "32-true")
            print(f"  {side} bf16 / {side} fp32 {'':{8 - len(side)}}    {ratio:6.3f}")
        fp32_bpc, bf16_bpc = (
            statistics.median(run["seqlab", p]["val_bpc"] for run in rounds)
            for p in ("32-true", bf16)
        )
        print(
            f"  seqlab val bpc after {args.steps + args.warmup} steps: fp32 {fp32_bpc:.4f}, "
            f"bf16 {bf16_bpc:.4f} ({bf16_bpc / fp32_bpc - 1:+.2%})"
        )
    first = statistics.median(run["seqlab", precisions[0]]["to_first_step"] for run in rounds)
    print(
        f"  seqlab start-up: {imports:.1f} s imports, {first:.1f} s from train() to the first step"
    )


if __name__ == "__main__":
    main()
