"""seqlab vs. a plain PyTorch loop: the same char-LSTM on the same batches, tokens per second.

    python scripts/bench.py                      # the packaged tinyshakespeare, 200 steps
    python scripts/bench.py --steps 500 --corpus my.txt --device cuda --precision bf16-mixed

Both train an embedding (64) + 2 x 256 LSTM + linear head with Adam on batches of 32 windows of
100 characters drawn at the same random offsets, one after the other in this process. seqlab
runs through `seqlab.train.train` (what `scripts/train.py` calls) with its default logging,
checkpointing and callbacks on. The first `--warmup` steps of each are not timed; `--rounds`
rounds run in alternating order and the best of each side is reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqlab.callbacks.step_timer import StepTimer
from seqlab.corpora import corpus_path

ROOT = Path(__file__).resolve().parents[1]
SEQ_LEN, BATCH, EMBED, HIDDEN, LAYERS, LR = 100, 32, 64, 256, 2, 2e-3


def plain_pytorch(corpus: Path, steps: int, warmup: int, device: str, precision: str) -> float:
    import torch
    from torch import nn
    from torch.nn import functional as F

    from seqlab.data import TextDataModule
    from seqlab.data.text import WindowStarts

    torch.manual_seed(0)
    # the same encoded corpus and the same per-step batches as seqlab draws
    data = TextDataModule(path=str(corpus), seq_len=SEQ_LEN, batch_size=BATCH, sampling="random")
    loader = data.train_dataloader()
    vocab = len(data.vocab)

    class CharLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocab, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, LAYERS, batch_first=True)
            self.head = nn.Linear(HIDDEN, vocab)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(self.embedding(x))[0])

    model = CharLSTM().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    autocast = precision == "bf16-mixed"
    batches = iter(loader)
    for step in range(steps + warmup):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        starts, scored_from = next(batches)  # gathered on the device, as seqlab does
        batch = data.gather(WindowStarts(starts.to(device), scored_from.to(device)))
        x, y = batch.inputs, batch.targets
        x, y = x.long(), y.long()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH * SEQ_LEN / (time.perf_counter() - start)


def seqlab_run(
    corpus: Path, steps: int, warmup: int, device: str, precision: str
) -> tuple[float, float]:
    from hydra import compose, initialize_config_dir

    from seqlab.train import train

    StepTimer.warmup = warmup
    with tempfile.TemporaryDirectory() as run_dir:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.output_dir={run_dir}",
                    "data=textfile",
                    f"data.path={corpus}",
                    f"data.seq_len={SEQ_LEN}",
                    f"data.batch_size={BATCH}",
                    f"data.steps_per_epoch={steps + warmup}",
                    "model=lstm",
                    "model.encoding=embedding",
                    f"model.embedding_dim={EMBED}",
                    f"model.hidden_size={HIDDEN}",
                    f"model.num_layers={LAYERS}",
                    f"optimizer.lr={LR}",
                    "trainer.max_epochs=1",
                    f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
                    "trainer.devices=1",
                    f"trainer.precision={precision}",
                    "+trainer.num_sanity_val_steps=0",
                    "+trainer.limit_val_batches=10",  # validation is not timed; keep it short
                    "+callbacks.timer._target_=seqlab.callbacks.step_timer.StepTimer",
                ],
            )
        started = time.perf_counter()
        train(cfg)
    marks = StepTimer.marks
    tokens_per_s = steps * BATCH * SEQ_LEN / (marks["timed_end"] - marks["timed_start"])
    return tokens_per_s, marks["first_step"] - started


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=corpus_path("tinyshakespeare.txt.gz"), help="plain or .gz"
    )
    parser.add_argument("--steps", type=int, default=200, help="timed steps (200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps (10)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both, order alternating")
    args = parser.parse_args()
    if not args.corpus.is_file():
        sys.exit(f"error: --corpus {args.corpus}: no such file")

    # a fresh interpreter importing what a run imports: torch, Lightning, Hydra, seqlab
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import seqlab.train"], check=True)
    imports = time.perf_counter() - started
    run = (args.corpus, args.steps, args.warmup, args.device, args.precision)
    # rounds in alternating order (plain first, then seqlab first, ...), the best of each kept:
    # neither side gains from going first or second on a machine whose speed drifts
    plains, ours_all, starts = [], [], []
    for round_ in range(args.rounds):
        for side in ("plain", "seqlab") if round_ % 2 == 0 else ("seqlab", "plain"):
            if side == "plain":
                plains.append(plain_pytorch(*run))
            else:
                tokens_per_s, to_first_step = seqlab_run(*run)
                ours_all.append(tokens_per_s)
                starts.append(to_first_step)
    plain, ours, to_first_step = max(plains), max(ours_all), min(starts)
    import torch

    threads = torch.get_num_threads()
    print(f"char-LSTM (embedding {EMBED}, {LAYERS} x {HIDDEN}), seq {SEQ_LEN}, batch {BATCH}")
    print(f"{args.steps} timed steps, {args.device}, {args.precision}, {threads} torch threads")
    print(f"best of {args.rounds} rounds: plain {_list(plains)}; seqlab {_list(ours_all)}")
    print(f"  plain PyTorch loop   {plain:10,.0f} tokens/s")
    print(f"  seqlab               {ours:10,.0f} tokens/s")
    print(f"  ratio                {ours / plain:10.3f}")
    print(f"  seqlab start-up      {imports:10.1f} s imports")
    print(f"                       {to_first_step:10.1f} s from train() to the first step")


if __name__ == "__main__":
    main()
