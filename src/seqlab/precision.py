"""Mixed precision: weight casts made once per step instead of once per time step, and the
CPU autocast precisions this CPU has no LSTM kernel for, refused before training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from seqlab.errors import SettingError


@contextmanager
def cast_weights_once(device_type: str) -> Iterator[None]:
    """Inside an enabled ``torch.autocast`` region: the same region with autocast's weight cache
    on, so each float32 weight is cast to the lower precision once, however often it is read.

    Lightning (2.6) enters autocast with ``cache_enabled=False`` (a cast made under a nested
    ``no_grad`` would otherwise be reused where gradients are needed). Without the cache, the
    CPU kernels of ``nn.RNN`` and ``nn.GRU``, which read ``weight_hh`` once per time step, cast
    it T times in the forward pass and add T casts' gradients in the backward: 25-35 ms of a
    ~120 ms step for a 2 x 256 GRU on 100 steps, measured on this project's 2-core CPU. Nothing
    in the network's forward pass runs under ``no_grad``, and the cache is emptied when
    Lightning's outer region ends with the step, so no cast outlives the step that made it.
    Outside autocast this does nothing.
    """
    if not torch.is_autocast_enabled(device_type):
        yield
        return
    dtype = torch.get_autocast_dtype(device_type)
    with torch.autocast(device_type, dtype=dtype, cache_enabled=True):
        yield


# Lightning's autocast precisions and the dtype each runs its matrix products in
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def cpu_lstm_kernel_missing(precision: str) -> str | None:
    """Why ``nn.LSTM`` cannot run under this precision's CPU autocast here, or None if it can.

    Under autocast, ``nn.LSTM`` on the CPU is oneDNN's fused LSTM layer in the lower precision,
    which oneDNN builds only where the CPU has the instructions for it (AVX-512 for bf16, AVX-512
    FP16 or AMX-FP16 for fp16); elsewhere the first forward pass fails with "could not create a
    primitive descriptor for the LSTM forward propagation primitive". ``nn.RNN`` and ``nn.GRU``
    are GEMMs, which run on any CPU; ``bf16-true`` takes another path, which runs too.
    """
    dtype = AUTOCAST_DTYPES.get(str(precision))
    mkldnn = torch.backends.mkldnn
    if dtype is None or not (mkldnn.is_available() and mkldnn.enabled):
        return None  # without oneDNN, torch's own LSTM runs (slowly) in any dtype
    if _cpu_supports(dtype):
        return None
    name, needs = (
        ("bf16", "AVX-512") if dtype is torch.bfloat16 else ("fp16", "AVX-512 FP16 or AMX")
    )
    return (
        f"this CPU has no {name} kernel for oneDNN's LSTM layer (it needs {needs}); "
        "expected 32-true or bf16-true for an LSTM on this CPU, or a GPU"
    )


def _cpu_supports(dtype: torch.dtype) -> bool:
    """oneDNN's own test of this CPU for the dtype (what it builds its LSTM kernels from)."""
    if dtype is torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())


def check_autocast_kernels(
    setting: Any, precision: str, on_cpu: bool, model: torch.nn.Module
) -> None:
    """Refuse, before training, a CPU autocast precision this CPU cannot run the model's LSTM in.

    ``precision`` is the one Lightning runs (on the CPU it runs ``16-mixed`` as ``bf16-mixed``),
    ``setting`` the value of ``trainer.precision`` the error names.
    """
    if not on_cpu or not any(isinstance(m, torch.nn.LSTM) for m in model.modules()):
        return
    if reason := cpu_lstm_kernel_missing(precision):
        if str(setting) != str(precision):  # 16-mixed: the bf16 kernel is the one it needs
            reason = f"on the CPU Lightning runs it as {precision}, and {reason}"
        raise SettingError("trainer.precision", setting, reason)
