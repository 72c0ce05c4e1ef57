"""Peak memory and start-up time of training on a large text file through data.cache.

    python scripts/bench_memory.py                  # 100 MB of tinyshakespeare, characters
    python scripts/bench_memory.py --mb 2000 --level word \\
        --source ../shared/data/wikitext-2/train.txt    # 2 GB of WikiText-2 words
    python scripts/bench_memory.py --mb 200 --in-memory  # and once without the cache

Repeats `--source` (plain or .gz) to `--mb` MB, written a copy at a time (never one string of
that size), into a temporary dir: `--level char` a file for `data=textfile` (random windows of
`--seq-len`), `--level word` a folder for `data=corpus` (train.txt the repeated text, valid.txt
the source's first tenth, at most 1 MB; streams of `--seq-len`). Then trains `--steps` steps of
a 2 x 256 LSTM in a fresh process (`scripts/train.py`), twice with `data.cache=true` and an
empty cache folder: the first start encodes the token file, the second maps it. For each
process: its peak resident memory (ru_maxrss) and the seconds from its start to its first
training step (marked by seqlab.callbacks.step_timer.StepTimer).
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

# runs scripts/train.py in this child, then prints its own peak RSS (KiB on Linux, bytes on
# macOS) and when its first step began (perf_counter: the system's monotonic clock, the same
# clock as the parent's)
CHILD = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    from seqlab.callbacks.step_timer import StepTimer
    print("PEAK_RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print("FIRST_STEP_AT", StepTimer.marks.get("first_step", "none"))
"""
RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss in bytes, or in KiB
MODEL = ["model=lstm", "model.encoding=embedding", "model.hidden_size=256", "model.num_layers=2"]


def write_repeated(source: bytes, megabytes: int, path: Path) -> None:
    """``source`` repeated to ``megabytes`` MB, a copy at a time; the last copy is cut at a
    line end, so no character or line is cut."""
    size, written = megabytes * 1_000_000, 0
    with path.open("wb") as out:
        while written < size:
            copy = source[: size - written]
            if len(copy) < len(source):
                copy = copy[: copy.rfind(b"\n") + 1] or copy.decode("utf-8", "ignore").encode()
                size = written + len(copy)  # nothing more fits
            out.write(copy)
            written += len(copy)


def make_corpus(source: Path, megabytes: int, level: str, tmp: Path) -> list[str]:
    """The corpus written into ``tmp``, as the overrides that read it."""
    from seqlab.data.text import read_text  # torch loads after the arguments are parsed

    text = read_text(str(source), key="--source").encode()  # plain or gzip-compressed
    if level == "char":
        write_repeated(text, megabytes, tmp / "corpus.txt")
        return ["data=textfile", f"data.path={tmp / 'corpus.txt'}", "data.sampling=random"]
    folder = tmp / "corpus"
    folder.mkdir()
    write_repeated(text, megabytes, folder / "train.txt")
    head = text[: min(len(text) // 10, 1_000_000)]
    (folder / "valid.txt").write_bytes(head[: head.rfind(b"\n") + 1] or text)
    return ["data=corpus", f"data.dir={folder}"]


def start(data: list[str], seq_len: int, steps: int, cwd: Path, *extra: str) -> tuple[float, float]:
    """Peak resident memory (GiB) of one training process, and seconds to its first step."""
    command = [
        sys.executable, "-c", CHILD, str(ROOT / "scripts" / "train.py"), *data,
        f"data.seq_len={seq_len}", *MODEL, "trainer.max_epochs=1",
        f"+trainer.limit_train_batches={steps}", "+trainer.limit_val_batches=5",
        "+trainer.num_sanity_val_steps=0", "callbacks=none", "logger=none",
        "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false",
        "+callbacks.timer._target_=seqlab.callbacks.step_timer.StepTimer", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"training failed ({' '.join(extra)}):\n{done.stderr[-3000:]}")
    marks = ("PEAK_RSS ", "FIRST_STEP_AT ")
    said = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(marks))
    peak = int(said["PEAK_RSS"]) * RSS_UNIT / 2**30
    return peak, float(said["FIRST_STEP_AT"]) - started


@exits_on_setting_error  # a --source that cannot be read is one line
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = corpus_path("tinyshakespeare.txt.gz")
    parser.add_argument("--source", type=Path, default=source, help="text repeated to size")
    parser.add_argument("--mb", type=int, default=100, help="corpus size in MB (100)")
    parser.add_argument("--level", choices=["char", "word"], default="char")
    parser.add_argument("--seq-len", type=int, help="window or BPTT length (char 100, word 35)")
    parser.add_argument("--steps", type=int, default=20, help="training steps a start (20)")
    parser.add_argument("--in-memory", action="store_true", help="also once with cache=false")
    args = parser.parse_args()
    seq_len = args.seq_len or (100 if args.level == "char" else 35)

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = make_corpus(args.source, args.mb, args.level, tmp)
        cached = ["data.cache=true", f"data.cache_dir={tmp / 'cache'}"]
        print(
            f"{args.mb:,} MB of {args.source.name} repeated, {args.level} level; "
            f"{args.steps} steps of a 2 x 256 LSTM, seq_len {seq_len}, a fresh process each"
        )
        runs = [("first start, cache built", cached), ("second start, cache reused", cached)]
        if args.in_memory:
            runs.append(("without the cache", ["data.cache=false"]))
        results = []
        for label, settings in runs:
            peak, to_first = start(data, seq_len, args.steps, tmp, *settings)
            results.append(to_first)
            shown = f"peak resident memory {peak:5.2f} GiB, first step {to_first:5.1f} s"
            print(f"  {label:27} {shown}")
        [tokens] = (tmp / "cache").glob("*/tokens.npy")
        print(f"  token file {tokens.stat().st_size / 2**20:,.0f} MiB")
        print(f"  second start reaches its first step {results[0] / results[1]:.1f}x sooner")


if __name__ == "__main__":
    main()
