"""A test's view into stateful training: what the RNN starts each batch from, and graph sizes."""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl


class StateProbe(pl.Callback):
    """Records, for every RNN call, the stage and the state it started from and ended with, and
    the size of each training step's backward graph. Built by Hydra inside ``train()``
    (``+callbacks.probe._target_=state_probe.StateProbe``): the latest one is ``StateProbe.latest``.
    """

    latest: ClassVar[StateProbe | None] = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, object]] = []
        self.graph_sizes: list[int] = []
        self.stage: str | None = None  # inside a training or validation batch, not a callback's
        # per training step: the batch's lr_scale, the lr the step used, the lr after it
        self.lrs: list[list[float]] = []
        StateProbe.latest = self

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        self.stage = "train"
        self.lrs.append([batch.lr_scale])

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module, optimizer) -> None:
        self.lrs[-1].append(optimizer.param_groups[0]["lr"])

    def on_validation_batch_start(self, *args: object) -> None:
        self.stage = "eval"

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self.stage = None
        self.lrs[-1].append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_validation_batch_end(self, *args: object) -> None:
        self.stage = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        def hook(module, args, output) -> None:
            if self.stage is not None:
                started = args[1] if len(args) > 1 else None
                self.calls.append((self.stage, started, output[1]))

        self.module = pl_module
        pl_module.net.rnn.register_forward_hook(hook)

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss) -> None:
        seen, todo = set(), [loss.grad_fn]
        while todo:
            node = todo.pop()
            if node is not None and node not in seen:
                seen.add(node)
                todo += [next_node for next_node, _ in node.next_functions]
        self.graph_sizes.append(len(seen))
