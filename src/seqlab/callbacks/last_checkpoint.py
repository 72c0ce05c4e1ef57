"""checkpoints/last.ckpt: where a run stands, for ``resume=RUN_DIR`` and ``eval.py``."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from seqlab.interrupt import RunInterrupted


class LastCheckpoint(ModelCheckpoint):
    """Saves ``dirpath/last.ckpt`` at the end of every training epoch, at the end of training
    (a run stopped by ``max_time`` or ``max_steps`` mid-epoch), and where a SIGINT / SIGTERM
    stopped it.

    ``ModelCheckpoint(save_last=True)`` beside a monitored checkpoint writes last.ckpt only
    with a new best; this one is unmonitored, so it always holds the latest state. It saves
    at the training epoch's end, after the run summary took in the epoch's metrics, so a
    resumed run carries them on.
    """

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=None,
            save_top_k=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )

    @property
    def path(self) -> Path:
        return Path(self.format_checkpoint_name({}))

    def _save_now(self, trainer: pl.Trainer) -> None:
        # Lightning's own guard against saving the same step twice (_last_global_step_saved);
        # fast_dev_run saves nothing, as Lightning's own checkpoints
        fresh = trainer.global_step != self._last_global_step_saved
        if fresh and not trainer.sanity_checking and not trainer.fast_dev_run:
            self._save_checkpoint(trainer, str(self.path))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_now(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # interrupted at a step boundary (see seqlab.interrupt): resumable from exactly here;
        # after a crash or a forced stop the state may be half-updated, so last.ckpt stays
        if isinstance(exception, RunInterrupted) and not exception.forced:
            self._save_now(trainer)
