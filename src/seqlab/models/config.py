"""RecurrentNet's build arguments, in one typed place (nanoGPT's ``GPTConfig``).

The data's facts come first; the ``model.*`` settings follow as keyword-only fields, each with
its type and default: seqlab's settings checker reads them from here (for conf/model/*.yaml and
for a checkpoint's ``hyper_parameters``), SeqModule takes them as ``**settings`` and saves them,
and ``__post_init__`` holds their ranges and the rules between them. A new setting is one line
below (and its key in conf/model/rnn.yaml).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, asdict, dataclass, fields
from typing import Any

from seqlab.errors import SettingError, check_at_least, check_choice, check_positive
from seqlab.models.adaptive import DIV_VALUE, default_cutoffs, projection_sizes

CELLS = ("rnn", "lstm", "gru")
IMPLS = ("torch", "scratch")
NONLINEARITIES = ("tanh", "relu")
ENCODINGS = ("onehot", "embedding")
HEADS = ("fc", "none", "adaptive")
# many-to-one: what represents a sequence: the final states, or the outputs' max or mean over time
POOLINGS = ("last", "max", "mean")
# AWD-LSTM's dropout probabilities (seqlab.models.regularize)
REGULARISERS = (
    "weight_drop",
    "dropout_input",
    "dropout_hidden",
    "dropout_output",
    "dropout_embedding",
)


@dataclass
class NetConfig:
    # facts of the data (the DataModule's vocabulary and classes), never a model.* setting
    vocab_size: int
    num_outputs: int
    many_to_one: bool = False  # one prediction per sequence (classify), else one per step
    pad_index: int | None = None
    by_count: bool = False  # the tokens are ordered most frequent first (a word corpus's)
    _: KW_ONLY
    # the model.* settings
    cell: str = "rnn"
    impl: str = "torch"
    nonlinearity: str = "tanh"
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    encoding: str = "onehot"
    embedding_dim: int = 16
    head: str = "fc"
    pooling: str = "last"
    forget_bias: float | None = None
    tie_weights: bool = False
    init_range: float | None = None
    cutoffs: list[int] | None = None
    div_value: float = DIV_VALUE
    # AWD-LSTM's regularisers (seqlab.models.regularize), each off at 0
    weight_drop: float = 0.0  # DropConnect on the hidden-to-hidden weights
    dropout_input: float = 0.0  # locked dropout on the RNN's input
    dropout_hidden: float = 0.0  # locked dropout between layers (runs them one by one)
    dropout_output: float = 0.0  # locked dropout on the last layer's output
    dropout_embedding: float = 0.0  # whole words dropped from the embedding matrix
    ar_alpha: float = 0.0  # training loss + ar_alpha * mean(h_t^2) of the dropped output
    tar_beta: float = 0.0  # training loss + tar_beta * mean((h_t - h_{t-1})^2)
    hidden_sizes: list[int] | None = None  # each layer's size (run one by one); null: hidden_size

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def features(self) -> int:
        """Size of the RNN's output at each step: the head's input."""
        return self.hidden_size * self.directions

    @property
    def layer_sizes(self) -> list[int]:
        return list(self.hidden_sizes or [self.hidden_size] * self.num_layers)

    @property
    def layered(self) -> bool:
        """The layers run as one RNN module each: sizes of their own, or dropout between."""
        return self.hidden_sizes is not None or self.dropout_hidden > 0

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.kw_only)

    def settings(self) -> dict[str, Any]:
        """The model.* settings as plain data, as a checkpoint records them."""
        values = asdict(self)
        return {name: values[name] for name in self.setting_names()}

    def __post_init__(self) -> None:
        check_choice("cell", self.cell, CELLS)
        check_choice("impl", self.impl, IMPLS)
        check_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        if self.cell != "rnn" and self.nonlinearity != "tanh":
            reason = f"applies to cell=rnn only, not {self.cell}"
            raise SettingError("nonlinearity", self.nonlinearity, reason)
        check_choice("encoding", self.encoding, ENCODINGS)
        check_choice("head", self.head, HEADS)
        check_choice("pooling", self.pooling, POOLINGS)
        if self.forget_bias is not None and self.cell != "lstm":
            reason = f"applies to cell=lstm only, not {self.cell}"
            raise SettingError("forget_bias", self.forget_bias, reason)
        check_positive("hidden_size", self.hidden_size)
        check_positive("num_layers", self.num_layers)
        if self.encoding == "embedding":
            check_positive("embedding_dim", self.embedding_dim)
        for name in ("dropout", *REGULARISERS):
            if not 0 <= getattr(self, name) < 1:
                raise SettingError(name, getattr(self, name), f"expected 0 <= {name} < 1")
        check_at_least("ar_alpha", self.ar_alpha, 0)
        check_at_least("tar_beta", self.tar_beta, 0)
        self._check_layers()
        if self.head == "none" and self.features != self.num_outputs:
            scores = f"head=none makes the RNN outputs the {self.num_outputs} class scores"
            if self.num_outputs % self.directions == 0:
                need = f"{scores}, so hidden_size must be {self.num_outputs // self.directions}"
            else:
                need = f"{scores}; hidden_size x 2 directions cannot be {self.num_outputs}: "
                need += "use head=fc"
            raise SettingError("hidden_size", self.hidden_size, need)
        if self.head == "adaptive":
            self._check_adaptive()
        elif self.cutoffs is not None:
            reason = f"applies to head=adaptive only, not {self.head}"
            raise SettingError("cutoffs", self.cutoffs, reason)
        elif self.div_value != DIV_VALUE:
            reason = f"applies to head=adaptive only, not {self.head}"
            raise SettingError("div_value", self.div_value, reason)
        if self.tie_weights:
            self._check_tying()
        if self.init_range is not None:
            check_positive("init_range", self.init_range)
            if self.encoding == "onehot" and self.head == "none":
                reason = "sets the embedding's and the head's weights: this net has neither"
                raise SettingError("init_range", self.init_range, reason)

    def _check_layers(self) -> None:
        if self.dropout_embedding and self.encoding != "embedding":
            reason = f"drops rows of the embedding: needs encoding=embedding, not {self.encoding}"
            raise SettingError("dropout_embedding", self.dropout_embedding, reason)
        if self.dropout_hidden and self.num_layers < 2:
            reason = "acts between stacked layers: needs num_layers >= 2"
            raise SettingError("dropout_hidden", self.dropout_hidden, reason)
        sizes = self.hidden_sizes
        if sizes is None:
            return
        if not sizes or any(type(size) is not int or size < 1 for size in sizes):
            raise SettingError("hidden_sizes", sizes, "expected whole numbers >= 1, or null")
        if len(sizes) != self.num_layers:
            reason = f"gives {len(sizes)} layers: set model.num_layers={len(sizes)} too"
            raise SettingError("hidden_sizes", sizes, reason)
        if sizes[-1] != self.hidden_size:
            reason = (
                f"the last layer is what the head reads, hidden_size {self.hidden_size}: "
                f"set model.hidden_size={sizes[-1]} too"
            )
            raise SettingError("hidden_sizes", sizes, reason)
        self.hidden_sizes = list(sizes)

    def _check_tying(self) -> None:
        """The head's (V, D*H) weight can be the embedding's (V, E): the same vocabulary in and
        out, and E == D*H."""
        if self.encoding != "embedding":
            raise SettingError(
                "tie_weights", True, f"needs encoding=embedding, not {self.encoding}"
            )
        if self.head != "fc":
            raise SettingError("tie_weights", True, f"needs head=fc, not {self.head}")
        if self.many_to_one or self.num_outputs != self.vocab_size:
            reason = (
                "needs a next-token model, whose head scores the vocabulary it reads; "
                f"this one has {self.num_outputs} classes"
            )
            raise SettingError("tie_weights", True, reason)
        if self.embedding_dim != self.features and self.hidden_sizes is not None:
            reason = (
                f"tie_weights needs the last layer x directions to be embedding_dim "
                f"{self.embedding_dim}, not {self.features}"
            )
            raise SettingError("hidden_sizes", self.hidden_sizes, reason)
        if self.embedding_dim != self.features:
            reason = (
                f"the head's input is hidden_size x directions = {self.features}, "
                f"so embedding_dim must be {self.features}, not {self.embedding_dim}"
            )
            raise SettingError("tie_weights", True, reason)

    def _check_adaptive(self) -> None:
        """The adaptive head's clusters cut a vocabulary ordered by frequency: a next-token
        model's, counted; ``cutoffs`` (null: :func:`default_cutoffs`, recorded as chosen)
        within it, and a projection at least one wide for every cluster."""
        if self.many_to_one or self.num_outputs != self.vocab_size:
            reason = (
                "needs a next-token model, whose head scores the vocabulary it reads; "
                f"this one has {self.num_outputs} classes: use head=fc"
            )
            raise SettingError("head", self.head, reason)
        if not self.by_count:
            reason = (
                "its clusters group words by frequency, and this vocabulary is not ordered "
                "most frequent first: use a word corpus (data=corpus data.level=word), or head=fc"
            )
            raise SettingError("head", self.head, reason)
        words = self.vocab_size
        if self.cutoffs is None:
            self.cutoffs = default_cutoffs(words)
        cuts = list(self.cutoffs)
        if not cuts or cuts != sorted(set(cuts)) or not 0 < cuts[0] <= cuts[-1] < words:
            reason = (
                f"expected increasing whole numbers, each > 0 and < the vocabulary's {words:,} "
                f"tokens (most frequent first), e.g. {default_cutoffs(words)}"
            )
            raise SettingError("cutoffs", self.cutoffs, reason)
        self.cutoffs = cuts
        check_positive("div_value", self.div_value)
        widths = projection_sizes(self.features, len(cuts), self.div_value)
        if widths[-1] < 1:
            reason = (
                f"with hidden_size x directions = {self.features}, cluster {len(cuts)}'s "
                f"projection would be {self.features} // {self.div_value:g}^{len(cuts)} = "
                f"{widths[-1]} wide: use a smaller div_value or fewer cutoffs"
            )
            raise SettingError("div_value", self.div_value, reason)
