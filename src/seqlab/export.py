"""A checkpoint as an ONNX model: `python scripts/export.py ckpt_path=... out=model.onnx`.

The network is rebuilt through :mod:`seqlab.checkpoint` (plain data, seqlab's classes only) and
written with dynamic batch and time axes:

- a next-token model: ``tokens`` (B, T) int64, ``h`` (and ``c`` for an LSTM), each
  (layers x directions, B, H) -> ``scores`` (B, T, V), ``h_out`` (and ``c_out``); zeros are the
  fresh state, and a step's outputs are the next step's inputs, so a runtime can generate one
  token at a time (as scripts/generate.py does);
- a classifier: ``tokens`` (B, T) int64 padded with the vocabulary's pad id and ``lengths`` (B,)
  int64 -> ``scores`` (B, C), the logits; the padding is packed away as in training.

The model's metadata holds the vocabulary, the class names and the task, so a runtime can turn
text into ids and scores into words or labels.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from seqlab.checkpoint import load_checkpoint, module_from
from seqlab.data import CLASSIFY
from seqlab.errors import SettingError, exits_on_setting_error
from seqlab.models import RecurrentNet, State
from seqlab.module import SeqModule
from seqlab.settings import ExportSettings, plain, settings_from

# nn.LSTM / GRU / RNN and packing are ONNX ops from opset 14 on; onnxruntime >= 1.17 reads 17
OPSET = 17
BATCH, TIME = "batch", "time"  # the dynamic axes' names in the ONNX model
INSTALL = 'pip install -e ".[onnx]"'


class NextTokenGraph(nn.Module):
    """(tokens, h[, c]) -> (scores, h_out[, c_out]): the recurrent state in and out."""

    def __init__(self, net: RecurrentNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        outputs, state = self.net(tokens, state=h if c is None else (h, c))
        scores = self.net.scores(outputs)  # (B, T, V)
        return (scores, *state) if isinstance(state, tuple) else (scores, state)


class ClassifierGraph(nn.Module):
    """(tokens, lengths) -> (B, C) scores of a padded batch."""

    def __init__(self, net: RecurrentNet) -> None:
        super().__init__()
        self.net = net
        if net.pooling == "last":  # the top layer's RNN: the only one, or the last of them
            net.recurrent_layers[-1].register_forward_hook(top_state_from_outputs)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(tokens, lengths)[0]


def top_state_from_outputs(rnn: nn.Module, inputs: Any, result: tuple[Any, State]) -> Any:
    """The RNN's final state with its top layer read from its packed outputs: the same values.

    With pooling=last the network reads only the final state, leaving the packed outputs
    unused, and the TorchScript exporter refuses packing that is never undone ("these
    operations must occur in pairs"; with one layer a crash in its graph passes). The top
    layer's final state is in those outputs: forward at each sequence's last real step,
    backward at step 0, so reading it from there unpacks them and changes no number.
    """
    out, state = result
    if not isinstance(out, PackedSequence):
        return None
    padded, lengths = pad_packed_sequence(out, batch_first=True)  # (B, T, D * H), (B,)
    hidden, directions = rnn.hidden_size, 2 if rnn.bidirectional else 1
    # a copy, so the trace keeps the cast: ONNX's sequence lengths are int32
    last = (lengths.to(torch.int64, copy=True) - 1)[:, None, None].expand(-1, 1, padded.shape[2])
    top = [padded.gather(1, last)[:, 0, :hidden]]  # (B, H) forward
    if directions == 2:
        top.append(padded[:, 0, hidden:])  # (B, H) backward
    h_n = state[0] if isinstance(state, tuple) else state  # (L * D, B, H)
    h_n = torch.cat([h_n[:-directions], torch.stack(top)])
    return out, ((h_n, state[1]) if isinstance(state, tuple) else h_n)


def exportable(module: SeqModule, fail: partial[SettingError]) -> RecurrentNet:
    """The network to export; settings ONNX cannot express are refused, naming the setting."""
    net = module.net
    if net.config.head == "adaptive":
        raise fail(
            "its model has model.head=adaptive, which ONNX export does not support: the "
            "adaptive softmax's forward gives the features its clusters read, not scores "
            "(train with model.head=fc to export)"
        )
    if net.config.impl == "scratch":
        # the scratch cells loop over time in Python, which a trace unrolls to the sample's
        # length; torch's cells hold the same weights under the same names and compute the same
        twin = RecurrentNet(replace(net.config, impl="torch"))
        twin.load_state_dict(net.state_dict())
        net = twin
    return net.eval()


def graph_and_sample(
    net: RecurrentNet, task: str
) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str], list[str]]:
    """The module to trace, a sample input (B=2, T=3) and the input and output names."""
    tokens = torch.zeros(2, 3, dtype=torch.long)  # id 0: every vocabulary has one
    if task == CLASSIFY:
        # two lengths, so the trace sorts and packs as any padded batch does
        lengths = torch.tensor([3, 2])
        return ClassifierGraph(net), (tokens, lengths), ["tokens", "lengths"], ["scores"]
    dtype = next(net.parameters()).dtype
    # (L * D, B, H): with layers of their own sizes H is the widest, each layer's rows padded
    h = torch.zeros(net.num_layers * net.directions, 2, net.state_size, dtype=dtype)
    names = ["h", "c"] if isinstance(net.recurrent_layers[0], nn.LSTM) else ["h"]
    sample = (tokens, *(h.clone() for _ in names))
    return NextTokenGraph(net), sample, ["tokens", *names], ["scores", *(f"{n}_out" for n in names)]


def dynamic_axes(inputs: list[str], outputs: list[str], task: str) -> dict[str, dict[int, str]]:
    axes = {"tokens": {0: BATCH, 1: TIME}, "lengths": {0: BATCH}}
    axes["scores"] = {0: BATCH} if task == CLASSIFY else {0: BATCH, 1: TIME}
    for state in ("h", "c", "h_out", "c_out"):
        axes[state] = {1: BATCH}  # (layers x directions, B, H)
    return {name: axes[name] for name in [*inputs, *outputs]}


def export_onnx(net: RecurrentNet, module: SeqModule, path: Path) -> Any:
    """Write ``net`` (``module``'s, :func:`exportable`) to ``path`` as ONNX, with ``module``'s
    vocabulary, classes and task as metadata; returns the checked onnx.ModelProto."""
    import onnx  # the onnx extra, checked by export_main

    task = module.hparams.task
    graph, sample, inputs, outputs = graph_and_sample(net, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # chosen on purpose, see below
            warnings.filterwarnings("ignore", ".*legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
            # about a zero initial state made for the sample's batch: the next-token graph takes
            # its state as inputs, the classifier's is built from the batch's shape (tested)
            warnings.filterwarnings("ignore", ".*with a batch_size other than 1")
            # nn.RNN's and pad_packed_sequence's checks of sizes, made on the sample: they
            # pass on any batch and length alike (tested on others)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # The TorchScript exporter (dynamo=False): torch 2.13's torch.export-based one
            # cannot trace pack_padded_sequence (its batch sizes depend on the lengths' values),
            # and it writes nn.RNN as a loop unrolled over the sample's steps, so the time axis
            # would not be dynamic. This one maps nn.RNN / GRU / LSTM to ONNX's RNN / GRU / LSTM
            # ops, packing to their sequence lengths, and takes dynamic_axes.
            torch.onnx.export(
                graph,
                sample,
                tmp,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic_axes(inputs, outputs, task),
                opset_version=OPSET,
                dynamo=False,
            )
        model = onnx.load(tmp)
        facts = {
            "seqlab.task": task,
            "seqlab.vocab": json.dumps(module.vocab.to_dict()),
            "seqlab.class_names": json.dumps(module.class_names),
        }
        onnx.helper.set_model_props(model, facts)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would make it: mkstemp's is private
        os.replace(tmp, path)  # a failed export leaves no partial file under the name asked for
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return model


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def describe(model: Any) -> list[str]:
    """One line per input and output: name, element type and shape, dynamic axes by name."""
    import onnx

    lines = []
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
            lines.append(f"  {kind:6} {value.name:7} {dtype!s:7} ({', '.join(dims)})")
    return lines


@exits_on_setting_error
def export_main(cfg: DictConfig) -> Path:
    """Write the checkpoint's network as an ONNX model at ``cfg.out``; returns its path.

    Every check comes first (the extra, the settings, the checkpoint, what ONNX can express):
    a refusal is one line and writes nothing.
    """
    try:
        import onnx  # noqa: F401 - the extra: the exporter's output is checked with it
    except ImportError:
        raise SystemExit(f"error: scripts/export.py needs the onnx package: {INSTALL}") from None
    settings = settings_from(ExportSettings, plain(cfg))
    fail = partial(SettingError, "ckpt_path", settings.ckpt_path)
    checkpoint = load_checkpoint(settings.ckpt_path)
    module = module_from(checkpoint, fail)
    net = exportable(module, fail)  # refused before anything is written
    path = Path(settings.out).expanduser()
    model = export_onnx(net, module, path)
    kind = "classifier" if module.hparams.task == CLASSIFY else "next-token model"
    print(f"wrote {path} ({kind}, {module.hparams.cell}, opset {OPSET}):")
    print("\n".join(describe(model)))
    return path
