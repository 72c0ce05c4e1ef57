"""seqlab: config-driven RNN / LSTM / GRU experiments on PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
