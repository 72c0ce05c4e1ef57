"""DataModules: each reads and checks its data, and tells the model its task and vocabulary."""

from seqlab.data.base import CLASSIFY, NEXT_TOKEN, TASKS, Batch, Sample, SeqDataModule
from seqlab.data.corpus import CorpusDataModule
from seqlab.data.labelled import LabelledTextDataModule
from seqlab.data.sentences import SentencesDataModule
from seqlab.data.text import TextDataModule
from seqlab.data.vocab import PAD, UNK, Vocab

__all__ = [
    "CLASSIFY",
    "NEXT_TOKEN",
    "PAD",
    "TASKS",
    "UNK",
    "Batch",
    "CorpusDataModule",
    "LabelledTextDataModule",
    "Sample",
    "SentencesDataModule",
    "SeqDataModule",
    "TextDataModule",
    "Vocab",
]
