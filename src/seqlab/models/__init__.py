"""Pure PyTorch networks: they know nothing of Lightning or Hydra."""

from seqlab.models.config import CELLS, ENCODINGS, HEADS, IMPLS, NONLINEARITIES, NetConfig
from seqlab.models.recurrent import RecurrentNet, State
from seqlab.models.scratch import ScratchGRU, ScratchLSTM, ScratchRecurrent, ScratchRNN

__all__ = [
    "CELLS",
    "ENCODINGS",
    "HEADS",
    "IMPLS",
    "NONLINEARITIES",
    "NetConfig",
    "RecurrentNet",
    "ScratchGRU",
    "ScratchLSTM",
    "ScratchRNN",
    "ScratchRecurrent",
    "State",
]
