"""The LightningModule: builds the network from plain arguments, trains it, logs its metrics."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from seqlab.data.base import CLASSIFY, IGNORE_INDEX, TASKS, Batch, Sample
from seqlab.data.vocab import Vocab
from seqlab.errors import RunFailed, SettingError, check_choice
from seqlab.inference import Prediction, classify, predict_next
from seqlab.metrics import (
    TEST_ACC,
    TEST_BPC,
    TEST_LOSS,
    TEST_PPL,
    TRAIN_ACC,
    TRAIN_AR,
    TRAIN_ASGD,
    TRAIN_LOSS,
    TRAIN_LOSS_STEP,
    TRAIN_PPL,
    TRAIN_TAR,
    VAL_ACC,
    VAL_BPC,
    VAL_LOSS,
    VAL_PPL,
    logs_bpc,
    logs_ppl,
)
from seqlab.models import NetConfig, RecurrentNet
from seqlab.models.recurrent import Run, State
from seqlab.models.regularize import activation_penalty, temporal_penalty
from seqlab.nt_asgd import (
    averaging,
    load_training_weights,
    restore,
    save_averages,
    swap_in_averages,
)
from seqlab.optimization import OptimizerFactory, Schedule, record
from seqlab.precision import cast_weights_once

log = logging.getLogger(__name__)

RUNNING = ("train_loss", "train_acc")  # the metrics a checkpoint mid-epoch carries on


def detached(state: State | None) -> State | None:
    """The state's values without their history (word_language_model's ``repackage_hidden``):
    the next batch starts from them, but its gradient stops here, ``seq_len`` steps back."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class WeightedMean(MeanMetric):
    """torchmetrics' MeanMetric, whose weights count with ``nan_strategy="disable"``, summed in
    float64.

    torchmetrics (1.9 and before) replaces the weights with ones in that mode
    (Lightning-AI/torchmetrics#3434), so a mean over batches of unequal size, or of windows
    that score unequal numbers of targets, would weigh each batch alike. NaN is kept as it is:
    a diverged loss stays NaN, with no host sync per step to look for it.

    The sums are float64: in float32 a count of scored tokens past 2**24 no longer takes every
    step's count exactly, and the rounding is one-sided (an epoch of 200,000 steps of 700
    tokens and loss 5.0 read 4.9868, a perplexity 1.3 % too low). On MPS, which has no
    float64, they are float32.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_dtype(torch.float64)

    def _apply(self, fn: Any, exclude_state: Sequence[str] = "") -> torch.nn.Module:
        # a move keeps the sums' dtype, whatever the module is cast to: torchmetrics guards its
        # states against .half() and .type(), not against .to(dtype), which Lightning's
        # bf16-true and 16-true call, and bf16 counts only 256 tokens exactly
        if self._dtype_convert:  # set_dtype's own cast
            return super()._apply(fn, exclude_state)
        dtype = torch.float32 if fn(torch.zeros(())).device.type == "mps" else torch.float64

        def keep(tensor: torch.Tensor) -> torch.Tensor:
            moved = fn(tensor)
            if moved.is_floating_point() and moved.dtype != dtype:
                return tensor.to(moved.device, dtype)  # from the sums themselves, not the cast
            return moved

        return super()._apply(keep, exclude_state)

    def update(self, value: torch.Tensor, weight: torch.Tensor) -> None:  # type: ignore[override]
        weight = torch.as_tensor(weight, dtype=self.dtype, device=self.device)
        self.mean_value += (value.to(self.dtype) * weight).sum()
        self.weight += weight.sum()


class Accuracy(MulticlassAccuracy):
    """torchmetrics' micro-averaged ``MulticlassAccuracy`` (top-1, targets at ``ignore_index``
    not scored), its states updated with four tensor ops a step.

    torchmetrics' own update picks the scored rows out by boolean indexing and counts each of
    its four states over them; an ignored target (negative) never equals a predicted class, so
    the correct predictions are counted over all rows and the others follow from the scored
    count. The states (tp, fp, tn, fn) are torchmetrics', each what its update would add: a
    checkpoint's running accuracy reads the same either way. Built with only what that holds
    for: micro average, top-1, and the negative ``IGNORE_INDEX``.
    """

    def __init__(self, num_classes: int) -> None:
        # validate_args=False: torchmetrics would check every step's targets with torch.unique,
        # a host sync per step on a GPU; seqlab's data made them, in range
        super().__init__(
            num_classes, average="micro", ignore_index=IGNORE_INDEX, validate_args=False
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        # preds: (N, C) scores or (N,) predicted ids; target: (N,) ids, ignore_index unscored
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=-1)
        correct = (preds == target).sum()
        scored = (target != self.ignore_index).sum()
        wrong = scored - correct
        self.tp += correct
        self.fp += wrong
        self.fn += wrong
        self.tn += scored * self.num_classes - 2 * wrong - correct


def _states(metric: torch.nn.Module) -> dict[str, torch.Tensor]:
    metric.persistent(True)
    try:
        return {name: value.detach().cpu() for name, value in metric.state_dict().items()}
    finally:
        metric.persistent(False)


class SeqModule(pl.LightningModule):
    """A :class:`RecurrentNet` trained on a task the data decides.

    ``vocab`` (``Vocab.to_dict()``), ``class_names`` and ``task`` come from the DataModule;
    ``settings`` are the ``model.*`` settings, :class:`NetConfig`'s. All of them are plain data
    saved in the checkpoint, which is all that is needed to rebuild the module for inference
    (``seqlab.checkpoint``). ``optimizer`` (called with the parameters) and ``scheduler`` are
    what train() built from the ``optimizer`` and ``scheduler`` groups; they are not saved.
    """

    SETTINGS = NetConfig  # what **settings takes, by name and type (seqlab.settings reads it)

    def __init__(
        self,
        vocab: dict[str, Any],
        class_names: Sequence[str],
        task: str,
        optimizer: OptimizerFactory | None = None,
        scheduler: Schedule | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        check_choice("task", task, TASKS)
        try:
            self.vocab = Vocab.from_dict(vocab)
        except ValueError as err:
            raise SettingError("vocab", vocab, str(err)) from None
        self.class_names = list(class_names)
        if len(set(self.class_names)) != len(self.class_names) or len(self.class_names) < 2:
            raise SettingError("class_names", class_names, "expected two or more distinct names")
        if task != CLASSIFY and self.class_names != self.vocab.tokens:
            reason = "a next-token model's classes are its vocabulary's tokens"
            raise SettingError("class_names", class_names, reason)
        config = NetConfig(
            len(self.vocab),
            len(self.class_names),
            many_to_one=task == CLASSIFY,
            pad_index=self.vocab.pad_index,
            by_count=self.vocab.by_count,
            **settings,
        )
        # every model.* setting, defaults too, flat beside the data's facts: plain data
        facts = {"vocab": vocab, "class_names": class_names, "task": task}
        self.save_hyperparameters(facts | config.settings())
        self.net = RecurrentNet(config)
        self.optimizer, self.scheduler = optimizer, scheduler
        # the streams' final state of the last batch, the next batch's initial one (see
        # seqlab.data.streams); None: a zero state
        self.train_state: State | None = None
        self.eval_state: State | None = None
        self._base_lrs: list[float] | None = None  # a jittered step's lrs before scaling
        self.train_loss, self.train_acc = self._loss_and_accuracy()
        # the loss since the last per-step log point: summed on the device, read at the interval
        self.interval_loss = WeightedMean(nan_strategy="disable")
        self.val_loss, self.val_acc = self._loss_and_accuracy()
        self.test_loss, self.test_acc = self._loss_and_accuracy()
        # AR and TAR, each an epoch mean logged beside train/loss, only when set
        self.penalties = {
            name: weight
            for name, weight in ((TRAIN_AR, config.ar_alpha), (TRAIN_TAR, config.tar_beta))
            if weight
        }
        self.penalty_means = torch.nn.ModuleList(
            WeightedMean(nan_strategy="disable") for _ in self.penalties
        )
        self._training_weights: list[torch.Tensor] | None = None  # while NT-ASGD's means are in

    def _loss_and_accuracy(self) -> tuple[WeightedMean, Accuracy]:
        # epoch means weighted by scored predictions, with no host sync until the epoch ends;
        # nan_strategy="disable": a diverged loss stays NaN (and is caught), no per-step check
        return WeightedMean(nan_strategy="disable"), Accuracy(len(self.class_names))

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.net.scores(self.net(batch.inputs, batch.lengths)[0])  # (B, T, C) or (B, C)

    def _scores(
        self, batch: Batch, state: State | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Run]:
        # the mean loss over the scored targets; (N, C) scores and (N,) targets for accuracy
        # (the adaptive head: (M,) predicted ids and the M scored targets); the run, whose
        # final state a stream's next batch starts from
        with cast_weights_once(self.device.type):
            run = self.net.run(batch.inputs, batch.lengths, state)
        loss, judged, targets = self.net.loss(run.outputs, batch.targets, IGNORE_INDEX)
        return loss, judged, targets, run

    def _penalty(self, name: str, run: Run) -> torch.Tensor:
        # AWD-LSTM's: AR on the last layer's dropped output, TAR on it before dropout
        if name == TRAIN_AR:
            return activation_penalty(run.dropped, self.penalties[name])
        return temporal_penalty(run.raw, self.penalties[name])

    @property
    def _word_level(self) -> bool:
        return logs_ppl(self.hparams.task, self.vocab.level)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        state = self.train_state if batch.carry_state else None
        loss, scores, targets, run = self._scores(batch, state)
        if batch.carry_state:
            self.train_state = detached(run.state)
        scored = (targets != IGNORE_INDEX).sum()
        self.train_loss.update(loss, weight=scored)
        self.interval_loss.update(loss, weight=scored)
        self.train_acc.update(scores, targets)
        objective = loss  # train/loss stays the cross-entropy; the penalties are logged beside
        for name, mean in zip(self.penalties, self.penalty_means, strict=True):
            penalty = self._penalty(name, run)
            mean.update(penalty.detach(), weight=torch.ones((), device=penalty.device))
            objective = objective + penalty
        # Lightning's own test of trainer.log_every_n_steps (as its LearningRateMonitor's): the
        # one step in N that reads the running mean off the device and hands it to the loggers
        if self.trainer._logger_connector.should_update_logs:
            mean = self.interval_loss.compute()  # all ranks' steps since the last point
            self.interval_loss.reset()
            self.log(TRAIN_LOSS_STEP, mean, on_step=True, on_epoch=False, batch_size=1)
        if self.trainer.is_last_batch or self._last_step():
            for name, mean in zip(self.penalties, self.penalty_means, strict=True):
                self.log(name, mean, on_step=False, on_epoch=True)
            # the epoch means, registered once: each self.log call costs about a millisecond of
            # bookkeeping, more than a lesson's whole step
            self.log(TRAIN_LOSS, self.train_loss, on_step=False, on_epoch=True)
            self.log(TRAIN_ACC, self.train_acc, on_step=False, on_epoch=True)
            if self._word_level:  # exp of the epoch's mean loss so far (all ranks' tokens)
                ppl = self.train_loss.compute().exp()
                self.log(TRAIN_PPL, ppl, on_step=False, on_epoch=True, batch_size=1)
        return objective

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # a jittered stream batch of T tokens steps with lr x T / seq_len (AWD-LSTM), put back
        # right after the step, before any scheduler reads the learning rate
        self._base_lrs = None
        if batch.lr_scale != 1.0:
            groups = self.trainer.optimizers[0].param_groups
            self._base_lrs = [group["lr"] for group in groups]
            for group in groups:
                group["lr"] = group["lr"] * batch.lr_scale

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self._base_lrs:
            for group, lr in zip(
                self.trainer.optimizers[0].param_groups, self._base_lrs, strict=True
            ):
                group["lr"] = lr
            self._base_lrs = None

    def _last_step(self) -> bool:
        """This step is the run's last (trainer.max_steps), though not its epoch's last."""
        max_steps = self.trainer.max_steps
        return max_steps > 0 and self.trainer.global_step + 1 >= max_steps

    def on_train_epoch_start(self) -> None:
        # a new epoch starts its running means and its streams' state at zero; Lightning does
        # not call this hook for an epoch resumed in the middle, which keeps the ones its
        # checkpoint restored
        self.train_loss.reset()
        self.train_acc.reset()
        for mean in self.penalty_means:
            mean.reset()
        self.train_state = None

    def carried_state(self) -> list[torch.Tensor]:
        """The training streams' state as a checkpoint keeps it: ``[h]`` or ``[h, c]``, each
        (ranks, L * D, B, H), every rank's (a collective call under DDP); [] when none."""
        if self.train_state is None:
            return []
        parts = (
            list(self.train_state) if isinstance(self.train_state, tuple) else [self.train_state]
        )
        if self.trainer.world_size > 1:
            return [self.all_gather(part).detach().cpu() for part in parts]
        return [part.detach().cpu()[None] for part in parts]

    def carried_state_problem(
        self, parts: list[torch.Tensor], ranks: int | None = None
    ) -> str | None:
        """What keeps a checkpoint's carried state (:meth:`carried_state`) from this model
        trained on ``ranks`` ranks (None: not known yet), or None."""
        if not parts:
            return None
        if ranks is not None and any(part.size(0) != ranks for part in parts):
            return (
                f"it carries the state of {parts[0].size(0)} ranks' streams, this run has "
                f"{ranks}: resume with as many devices as it was trained on"
            )
        layers, units = self.net.num_layers * self.net.directions, self.net.state_size
        needed = 2 if self.hparams.cell == "lstm" else 1  # LSTM: (h, c)
        if len(parts) != needed or any(p.size(1) != layers or p.size(3) != units for p in parts):
            shapes = ", ".join(str(tuple(part.shape[1:])) for part in parts)
            return (
                f"its carried state {shapes} does not fit this model "
                f"({needed} x (layers {layers}, streams, units {units}))"
            )
        return None

    def load_carried_state(self, parts: list[torch.Tensor]) -> None:
        """Put back what :meth:`carried_state` saved: this rank's part of it."""
        if problem := self.carried_state_problem(parts, self.trainer.world_size):
            raise RunFailed(f"the checkpoint cannot be continued: {problem}")
        if not parts:
            self.train_state = None
            return
        dtype = next(self.net.parameters()).dtype
        mine = [part[self.trainer.global_rank].to(self.device, dtype) for part in parts]
        self.train_state = tuple(mine) if len(mine) == 2 else mine[0]

    def running_metrics(self) -> dict[str, dict[str, torch.Tensor]]:
        """The training epoch's running metric states, as a checkpoint keeps them: under DDP
        summed over the ranks (every rank saves; the states are sums, as torchmetrics syncs)."""
        distributed = self.trainer.world_size > 1
        states = {}
        for name in RUNNING:
            metric = getattr(self, name)
            if distributed:
                metric.sync()
            states[name] = _states(metric)
            if distributed:
                metric.unsync()
        return states

    def load_running_metrics(self, states: dict[str, dict[str, torch.Tensor]]) -> None:
        if self.trainer.global_rank != 0:  # rank zero carries the sums of every rank
            return
        for name in RUNNING:
            if name in states:
                metric = getattr(self, name)
                metric.persistent(True)  # its states become part of its state_dict
                metric.load_state_dict(states[name])
                metric.persistent(False)

    def on_validation_epoch_start(self) -> None:
        self.eval_state = None  # every evaluation reads its streams from a zero state
        self._evaluate_averages()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        names = (VAL_LOSS, VAL_ACC, VAL_BPC, VAL_PPL)
        loss = self._log_evaluation(names, self.val_loss, self.val_acc)
        self._training_weights_back()
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        if hasattr(optimizer, "observe") and not self.trainer.sanity_checking:
            # NT-ASGD's trigger reads every evaluation's loss (the same on every rank)
            epoch = self.trainer.current_epoch
            if optimizer.observe(loss.item(), epoch):
                log.info("NT-ASGD: val/loss %.4f at epoch %d, averaging from now on", loss, epoch)
            self.log(TRAIN_ASGD, float(optimizer.averaging), sync_dist=True)

    def _evaluate_averages(self) -> None:
        # after NT-ASGD's switch, evaluation reads the means of the weights
        if (optimizer := averaging(self.trainer.optimizers)) and self._training_weights is None:
            self._training_weights = swap_in_averages(optimizer)

    def _training_weights_back(self) -> None:
        if (optimizer := averaging(self.trainer.optimizers)) and self._training_weights:
            restore(optimizer, self._training_weights)
        self._training_weights = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # after NT-ASGD's switch a checkpoint's weights are the means, what eval and generate
        # read; the weights training goes on from are kept beside them
        if optimizer := averaging(self.trainer.optimizers):
            save_averages(self, optimizer, checkpoint, self._training_weights)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_training_weights(checkpoint)  # seqlab.checkpoint checked them before training

    def on_test_epoch_start(self) -> None:
        self.eval_state = None
        self._evaluate_averages()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_loss, self.test_acc)

    def on_test_epoch_end(self) -> None:
        names = (TEST_LOSS, TEST_ACC, TEST_BPC, TEST_PPL)
        self._log_evaluation(names, self.test_loss, self.test_acc)
        self._training_weights_back()

    def _evaluate(self, batch: Batch, mean_loss: MeanMetric, accuracy: Accuracy) -> None:
        state = self.eval_state if batch.carry_state else None
        loss, scores, targets, run = self._scores(batch, state)
        if batch.carry_state:
            self.eval_state = run.state  # no graph to cut: evaluation runs without gradients
        mean_loss.update(loss, weight=(targets != IGNORE_INDEX).sum())
        accuracy.update(scores, targets)

    def _log_evaluation(
        self, names: tuple[str, str, str, str], mean_loss: MeanMetric, accuracy: Accuracy
    ) -> torch.Tensor:
        loss_name, acc_name, bpc_name, ppl_name = names
        loss = mean_loss.compute()
        mean_loss.reset()
        # the metric objects already reduced over the ranks; sync_dist only tells Lightning so
        self.log(loss_name, loss, prog_bar=True, sync_dist=True)
        self.log(acc_name, accuracy, prog_bar=True)
        if logs_bpc(self.hparams.task, self.vocab.level):
            self.log(bpc_name, loss / math.log(2), sync_dist=True)
        if self._word_level:  # exp of the mean per-token loss: every token of the split once
            self.log(ppl_name, loss.exp(), prog_bar=True, sync_dist=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        if self.optimizer is None:
            raise RuntimeError(
                "this SeqModule was built without an optimizer (a checkpoint's, for inference): "
                "give optimizer=functools.partial(torch.optim.Adam, lr=0.01) to train it"
            )
        optimizer = self.optimizer(self.parameters())
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler.lightning(optimizer)}

    @property
    def optimization(self) -> dict[str, Any] | None:
        """The optimizer's and the schedule's settings as plain data (kept in checkpoints)."""
        return None if self.optimizer is None else record(self.optimizer, self.scheduler)

    @torch.no_grad()
    def predict_samples(
        self, samples: Sequence[Sample], window: int | None = None
    ) -> list[Prediction]:
        """The model's answer for each lesson sample (call in eval mode)."""
        if self.hparams.task == CLASSIFY:
            labels = classify(self.net, self.vocab, self.class_names, [s.text for s in samples])
            return [
                Prediction(s.text, label, s.target, p)
                for s, (label, p) in zip(samples, labels, strict=True)
            ]
        return [
            Prediction(s.text, predict_next(self.net, self.vocab, s.text, window), s.target)
            for s in samples
        ]
