"""Pure PyTorch networks: they know nothing of Lightning or Hydra."""

from seqlab.models.recurrent import (
    CELLS,
    ENCODINGS,
    HEADS,
    IMPLS,
    NONLINEARITIES,
    RecurrentNet,
    State,
)
from seqlab.models.scratch import ScratchGRU, ScratchLSTM, ScratchRecurrent, ScratchRNN

__all__ = [
    "CELLS",
    "ENCODINGS",
    "HEADS",
    "IMPLS",
    "NONLINEARITIES",
    "RecurrentNet",
    "ScratchGRU",
    "ScratchLSTM",
    "ScratchRNN",
    "ScratchRecurrent",
    "State",
]
