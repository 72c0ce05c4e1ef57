"""Shows what the model predicts for the lesson samples, every validation epoch."""

from __future__ import annotations

import pytorch_lightning as pl

from seqlab.callbacks.tensorboard import tensorboard_writers
from seqlab.inference import Prediction


def prediction_rows(predictions: list[Prediction]) -> list[list[str]]:
    """A header and one row per prediction: input, predicted, (probability,) target, verdict."""
    probabilities = any(p.probability is not None for p in predictions)
    header = ["input", "predicted", *(["probability"] if probabilities else []), "target", "ok"]
    rows = [
        [
            _one_line(p.text),
            _one_line(p.predicted),
            *([f"{p.probability:.3f}"] if probabilities else []),
            _one_line(p.target),
            "✓" if p.correct else "✗",
        ]
        for p in predictions
    ]
    return [header, *rows]


def _one_line(text: str) -> str:
    # a corpus sample spans lines: shown as one, so input, prediction and target stay aligned
    return text.replace("\n", "↵")


def _code(text: str) -> str:
    # inline code keeps a leading space visible; a bare | would end the table cell
    return "`" + text.replace("|", "\\|") + "`"


def _markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(_code(c) for c in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


class LessonPredictions(pl.Callback):
    """Predicts the DataModule's ``samples`` after each validation epoch.

    Logs them to TensorBoard's TEXT tab (the lessons' ``prediction str: ihello``) and keeps the
    latest in ``self.latest`` for the run summary and the console.
    """

    def __init__(self) -> None:
        self.latest: list[Prediction] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        datamodule = trainer.datamodule
        self.latest = pl_module.predict_samples(datamodule.samples, datamodule.sample_window)
        for writer in tensorboard_writers(trainer):  # none off rank zero
            text = _markdown(prediction_rows(self.latest))
            writer.add_text("predictions", text, global_step=trainer.global_step)
