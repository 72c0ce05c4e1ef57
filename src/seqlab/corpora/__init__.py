"""The small corpora shipped inside the package, gzip-compressed, and where they are installed.

Configs name one as ``${corpus:NAME}`` (registered in :mod:`seqlab.config`). Free of torch: the
config path (``--help``, ``--cfg job``) imports it. Sources and licences: README.md, "Data
shipped with seqlab".
"""

from __future__ import annotations

from pathlib import Path

from seqlab.errors import SettingError

# beside this file in an editable checkout and in an installed wheel alike (package data)
HERE = Path(__file__).resolve().parent

CORPORA = (
    "sst2",  # a folder: train.tsv.gz, dev.tsv.gz, test.tsv.gz (data=sentences data.dir=...)
    "tinyshakespeare.txt.gz",  # one text file (data=textfile data.path=...)
    "wikitext-2",  # a folder: train.txt.gz, valid.txt.gz, test.txt.gz (data=corpus data.dir=...)
)


def corpus_path(name: str) -> str:
    """The absolute path of the packaged corpus ``name`` (a file or a folder of split files)."""
    if name not in CORPORA:
        known = ", ".join(CORPORA)
        raise SettingError("corpus", name, f"not a packaged corpus: expected one of {known}")
    return str(HERE / name)
