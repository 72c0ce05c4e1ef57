"""Pure PyTorch networks: they know nothing of Lightning or Hydra."""

from seqlab.models.recurrent import CELLS, ENCODINGS, HEADS, NONLINEARITIES, RecurrentNet, State

__all__ = ["CELLS", "ENCODINGS", "HEADS", "NONLINEARITIES", "RecurrentNet", "State"]
