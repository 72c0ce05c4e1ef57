"""NT-ASGD (Merity et al. 2017): SGD that starts averaging its iterates once the validation loss
stops improving.

:class:`NTASGD` steps as plain SGD until :meth:`NTASGD.observe` sees a validation loss worse
than the best of all but the last ``nonmono`` evaluations (AWD-LSTM's non-monotone trigger);
from then on each step also updates the running mean of the weights, which is what
evaluation and checkpoints use (:class:`seqlab.module.SeqModule` swaps it in). The trigger's
history, the epoch of the switch and the means are in the optimizer's state dict, so a resumed
run switches where the stopped one would have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

STATE_KEY = "nt_asgd"  # the optimizer state dict's entry for the trigger and the switch


class NTASGD(torch.optim.Optimizer):
    """Non-monotonically triggered averaged SGD.

    Until the switch: ``p -= lr * (grad + weight_decay * p)``. After it the same step, and
    ``ax = ax + (p - ax) / k`` at the k-th step since the switch (torch.optim.ASGD with ``t0=0,
    lambd=0``, AWD-LSTM's choice): the mean of the iterates since the switch.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
        lr: float = 30.0,
        weight_decay: float = 0.0,
        nonmono: int = 5,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if type(nonmono) is not int or nonmono < 1:
            raise ValueError(f"Invalid nonmono value: {nonmono} (expected a whole number >= 1)")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "nonmono": nonmono})
        self.nonmono = nonmono
        self.history: list[float] = []  # every validation loss observed, in order
        self.switched_at: int | None = None  # the epoch whose evaluation triggered the switch
        self.averaged_steps = 0  # steps since the switch: the count the means are over

    @property
    def averaging(self) -> bool:
        return self.switched_at is not None

    def should_switch(self, loss: float) -> bool:
        """AWD-LSTM's rule, before ``loss`` joins the history: more than ``nonmono`` earlier
        evaluations, and ``loss`` worse than the best of all but the last ``nonmono``."""
        earlier = self.history
        return len(earlier) > self.nonmono and loss > min(earlier[: -self.nonmono])

    def observe(self, loss: float, epoch: int) -> bool:
        """Record one evaluation's loss; True when it switches averaging on (once)."""
        if math.isnan(loss):  # a diverged run, which fails on it: nothing to compare with
            return False
        switch = not self.averaging and self.should_switch(loss)
        self.history.append(float(loss))
        if switch:
            self.switched_at = epoch
            for group in self.param_groups:
                for p in group["params"]:
                    self.state[p]["ax"] = p.detach().clone()  # the mean of no steps: p itself
        return switch

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.averaging:
            self.averaged_steps += 1
        for group in self.param_groups:
            lr, decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not decay else p.grad.add(p, alpha=decay)
                p.add_(grad, alpha=-lr)
                if self.averaging:
                    ax = self.state[p]["ax"]
                    ax.add_(p - ax, alpha=1 / self.averaged_steps)
        return loss

    def averages(self) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
        """Each parameter with its mean since the switch ([] before it)."""
        if not self.averaging:
            return []
        return [(p, self.state[p]["ax"]) for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state[STATE_KEY] = {
            "history": list(self.history),
            "switched_at": self.switched_at,
            "averaged_steps": self.averaged_steps,
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's, then the trigger's state, checked: a checkpoint is data from anywhere."""
        saved = state_dict.get(STATE_KEY)
        history, switched, steps = _checked(saved)
        super().load_state_dict(state_dict)
        if switched is not None:
            for group in self.param_groups:
                for p in group["params"]:
                    ax = self.state[p].get("ax")
                    if not isinstance(ax, torch.Tensor) or ax.shape != p.shape:
                        raise ValueError(f"{STATE_KEY}: averaging is on but a mean is missing")
        self.history, self.switched_at, self.averaged_steps = history, switched, steps


def _checked(saved: Any) -> tuple[list[float], int | None, int]:
    if not isinstance(saved, dict):
        raise ValueError(f"no {STATE_KEY} state (validation history, switch epoch)")
    history, switched, steps = (saved.get(k) for k in ("history", "switched_at", "averaged_steps"))
    if not isinstance(history, list) or not all(
        type(v) in (int, float) and not math.isnan(v) for v in history
    ):
        raise ValueError(f"{STATE_KEY}.history is not a list of losses: {history!r}")
    if switched is not None and (type(switched) is not int or switched < 0):
        raise ValueError(f"{STATE_KEY}.switched_at is not an epoch: {switched!r}")
    if type(steps) is not int or steps < 0 or (switched is None and steps):
        raise ValueError(f"{STATE_KEY}.averaged_steps is not a step count: {steps!r}")
    return [float(v) for v in history], switched, steps


# a checkpoint's seqlab section: the weights training goes on from, where state_dict holds the
# means (what evaluation, generation and export read)
TRAINING_WEIGHTS = "training_weights"


def averaging(optimizers: list[torch.optim.Optimizer]) -> NTASGD | None:
    """The run's NT-ASGD optimizer once it averages, else None."""
    found = optimizers[0] if optimizers else None
    return found if isinstance(found, NTASGD) and found.averaging else None


@torch.no_grad()
def swap_in_averages(optimizer: NTASGD) -> list[torch.Tensor]:
    """Put the means into the parameters; returns the training weights they replaced."""
    kept = []
    for p, ax in optimizer.averages():
        kept.append(p.detach().clone())
        p.copy_(ax)
    return kept


@torch.no_grad()
def restore(optimizer: NTASGD, kept: list[torch.Tensor]) -> None:
    for (p, _), weights in zip(optimizer.averages(), kept, strict=True):
        p.copy_(weights)


def save_averages(
    module: torch.nn.Module,
    optimizer: NTASGD,
    checkpoint: dict[str, Any],
    kept: list[torch.Tensor] | None,
) -> None:
    """``checkpoint``'s state_dict gets the means, its seqlab section the training weights
    (``kept`` while the means are swapped in, else the parameters themselves)."""
    pairs = optimizer.averages()
    kept = kept if kept is not None else [p for p, _ in pairs]
    # id(parameter) -> (training weights, mean)
    own = {id(p): (w, ax) for (p, ax), w in zip(pairs, kept, strict=True)}
    weights, training = checkpoint["state_dict"], {}
    for name, p in module.named_parameters(remove_duplicate=False):  # tied weights: each name
        if id(p) in own and name in weights:
            training[name] = own[id(p)][0].detach().clone()
            weights[name] = own[id(p)][1].detach().clone()
    checkpoint["seqlab"][TRAINING_WEIGHTS] = training


def load_training_weights(checkpoint: dict[str, Any]) -> None:
    """A checkpoint to go on training from: its training weights back into its state_dict
    (Lightning loads that into the model next; the means come back with the optimizer)."""
    checkpoint["state_dict"].update(checkpoint["seqlab"].get(TRAINING_WEIGHTS) or {})
