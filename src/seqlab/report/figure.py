"""report.png: every job's val/loss curve and its best metric, one colour per job."""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seqlab.metrics import VAL_LOSS
from seqlab.report.jobs import JobRecord, val_loss_curve
from seqlab.report.tables import better_word, short_labels


def _spans_decades(values: list[float]) -> bool:
    # one diverged job (val/loss 1e6) would flatten every other line or bar on a linear axis
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100


def report_figure(jobs: list[JobRecord], metric: str) -> Figure:
    """Left, every job's val/loss per step; right, each job's best ``metric``, best on top."""
    # the Agg canvas, not pyplot: no display needed and no global figure state left behind
    fig = Figure(figsize=(13, max(4.0, 1.5 + 0.35 * len(jobs))), layout="constrained")
    FigureCanvasAgg(fig)
    curves, bars = fig.subplots(1, 2)
    labels, n = short_labels(jobs), len(jobs)
    # a job has one colour in both panels; beyond ten, colour by rank: best dark, worst light
    ranked = [colormaps["viridis"](0.9 * y / max(n - 1, 1)) for y in range(n)]
    colors = [f"C{y}" for y in range(n)] if n <= 10 else ranked

    logged: list[float] = []
    for job, label, color in zip(jobs, labels, colors, strict=True):
        steps, values = val_loss_curve(job.path)
        if steps:  # a job that failed early logged nothing
            curves.plot(steps, values, marker=".", label=label, color=color)
            logged += values
    # no legend: it would hide lines, and the bars beside name each job in its colour
    curves.set(title=f"{VAL_LOSS} per step, coloured as the bars", xlabel="step", ylabel=VAL_LOSS)
    curves.set_yscale("log" if _spans_decades(logged) else "linear")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if not curves.lines:
        curves.text(0.5, 0.5, f"no job logged {VAL_LOSS}", ha="center", transform=curves.transAxes)

    best = {y: job.best[metric] for y, job in enumerate(jobs) if metric in job.best}
    bars.barh(list(best), list(best.values()), color=[colors[y] for y in best])
    bars.set_xscale("log" if _spans_decades(list(best.values())) else "linear")
    for y, job in enumerate(jobs):
        if y in best:
            bars.text(best[y], y, f" {best[y]:.4f}", va="center", fontsize="small")
        else:  # the status at the left edge: x in axes fractions, y in data
            where = bars.get_yaxis_transform()
            bars.text(0, y, f" {job.status}", va="center", fontsize="small", transform=where)
    bars.set_yticks(list(range(n)), labels, fontsize="small")
    bars.margins(x=0.15)  # room for the value printed after the longest bar
    bars.set_ylim(n - 0.5, -0.5)  # every job, bar or not, and the best on top as in the table
    bars.set(title=f"best {metric} ({better_word(metric)} is better)", xlabel=metric)
    return fig
