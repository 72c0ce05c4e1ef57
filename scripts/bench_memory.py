"""Peak memory of training on a 100 MB text file, for short and long windows.

    python scripts/bench_memory.py          # 100 MB of tinyshakespeare, seq_len 100 and 1000
    python scripts/bench_memory.py --mb 200 --seq-len 50 500 5000

Repeats the packaged tinyshakespeare (or `--source`, plain or .gz) to size and writes the corpus
into a temporary dir, times its encoding here, then trains a few steps of a char-LSTM on it in a
fresh process per `seq_len` (`scripts/train.py data=textfile ...`) and reports that process's
peak resident memory: with random windows (`data.sampling=random`), and with every window at
stride 1, shuffled (`data.sampling=stride data.stride=1`), whose epoch order holds one index per
character.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqlab.corpora import corpus_path
from seqlab.errors import exits_on_setting_error

ROOT = Path(__file__).resolve().parents[1]

# run scripts/train.py in this child and print its own peak RSS (KiB on Linux) at the end
CHILD = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


STRIDE_1 = ["data.sampling=stride", "data.stride=1"]


def make_corpus(source: Path, megabytes: int, path: Path) -> None:
    from seqlab.data.text import read_text  # torch loads after the arguments are parsed

    text = read_text(str(source), key="--source")  # plain or gzip-compressed
    copies = megabytes * 1_000_000 // len(text.encode()) + 1
    path.write_text((text * copies)[: megabytes * 1_000_000], encoding="utf-8")


def peak_rss_gib(corpus: Path, seq_len: int, cwd: Path, *sampling: str) -> float:
    command = [
        sys.executable, "-c", CHILD, str(ROOT / "scripts" / "train.py"),
        "data=textfile", f"data.path={corpus}", f"data.seq_len={seq_len}", *sampling,
        "+trainer.limit_train_batches=20", "model=lstm", "model.encoding=embedding",
        "model.hidden_size=256", "model.num_layers=2", "trainer.max_epochs=1",
        "+trainer.limit_val_batches=5", "+trainer.num_sanity_val_steps=0",
        "callbacks.progress_bar=null",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"training with seq_len={seq_len} failed:\n{done.stderr[-2000:]}")
    [line] = [x for x in done.stdout.splitlines() if x.startswith("PEAK_RSS_KIB")]
    return int(line.split()[1]) / 2**20


@exits_on_setting_error  # a --source that cannot be read is one line
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = corpus_path("tinyshakespeare.txt.gz")
    parser.add_argument("--source", type=Path, default=source, help="text repeated to size")
    parser.add_argument("--mb", type=int, default=100, help="corpus size in MB (100)")
    parser.add_argument("--seq-len", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()

    from seqlab.data import TextDataModule

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        make_corpus(args.source, args.mb, corpus)
        started = time.perf_counter()
        data = TextDataModule(path=str(corpus), seq_len=100, sampling="random")
        encoded = time.perf_counter() - started
        ids = data.train_set.ids  # a view of data.corpus
        print(f"{args.mb} MB corpus: read, vocabulary ({len(data.vocab)} symbols), encoding")
        print(f"  {encoded:.1f} s; train split held as {ids.numel():,} x {ids.dtype}")
        windows = ids.numel() - args.seq_len[0]  # at stride 1: one per train character
        del data, ids
        for seq_len in args.seq_len:
            peak = peak_rss_gib(corpus, seq_len, Path(tmp))
            print(f"  seq_len {seq_len:5}: peak resident memory while training {peak:.2f} GiB")
        strided = peak_rss_gib(corpus, args.seq_len[0], Path(tmp), *STRIDE_1)
        print(f"  stride 1, {windows:,} windows shuffled each epoch: peak {strided:.2f} GiB")


if __name__ == "__main__":
    main()
