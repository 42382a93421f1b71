"""House style of the benchmark figures (``qllm.experiments.plots``): sizes, fonts, one colour per
model, clipped error bands, readable log ticks and time units, and the PDF + PNG writer.

Sizes follow two-column journals: a column is ``COLUMN_IN`` wide, the page ``2 * COLUMN_IN``.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np

COLUMN_IN = 3.4  # single-column width (inches); two columns make a full-width figure
PANEL_H_IN = 2.5
MIN_FONT_PT = 8
RC = {"font.size": MIN_FONT_PT, "axes.titlesize": MIN_FONT_PT + 0.5,
      "axes.labelsize": MIN_FONT_PT, "xtick.labelsize": MIN_FONT_PT,
      "ytick.labelsize": MIN_FONT_PT, "legend.fontsize": MIN_FONT_PT,
      "figure.titlesize": MIN_FONT_PT, "pdf.fonttype": 42, "ps.fonttype": 42,
      "axes.linewidth": 0.6, "lines.linewidth": 1.2}
PNG_DPI = 300
MARKERS = {"classical-width": "s", "classical-params": "D", "hybrid": "o", "bottleneck": "v",
           "no_entanglement": "^"}
LINES = {"classical-width": "--", "classical-params": ":", "hybrid": "-", "bottleneck": "-.",
         "no_entanglement": (0, (1, 1))}
# Okabe-Ito (colour-blind safe) first, then tab20's darker half: distinct for a full preset
HYBRID_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                 "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#d62728", "#1f77b4",
                 "#e377c2", "#2ca02c", "#ff7f0e", "#393b79")
PARAM_COLORS = ("#6f6f6f", "#a07850", "#404040", "#b0b0b0", "#705040", "#909090")
SHOT_COLOR, DEVICE_COLOR = "#0072B2", "#D55E00"
TIME_UNITS = (("s", 1.0), ("min", 60.0), ("h", 3600.0), ("days", 86400.0),
              ("years", 365.25 * 86400.0))


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def model_colors(rows: list[dict]) -> dict[str, str]:
    """One colour per model label over all tasks (so a model looks the same in every panel
    and figure): black for the width-matched baseline, greys and browns for parameter-matched
    ones, bright colour-blind-safe colours for hybrids, in a fixed order of the labels."""
    fam = {r["label"]: r["family"] for r in rows}
    out, n_param, n_hyb = {}, 0, 0
    for label in sorted(fam):
        if fam[label] == "classical-width":
            out[label] = "black"
        elif fam[label] == "classical-params":
            out[label] = PARAM_COLORS[n_param % len(PARAM_COLORS)]
            n_param += 1
        else:
            out[label] = HYBRID_COLORS[n_hyb % len(HYBRID_COLORS)]
            n_hyb += 1
    return out


def legend_label(label: str) -> str:
    if label == "classical-width":
        return "classical (same width)"
    if label.startswith("classical-params~"):
        return f"classical (params ≈ {label.split('~', 1)[1]})"
    return label


def metric_scale(metric: str) -> float:
    return 1.0 if metric == "perplexity" else 100.0


def metric_label(metric: str) -> str:
    return "test perplexity (lower is better)" if metric == "perplexity" else "test accuracy (%)"


def clip_band(y, e, metric: str):
    """``(low, high)`` of ``y ± e`` inside what the metric can reach: [0, 100]% for accuracy,
    >= 1 for perplexity, >= 0 for a loss."""
    y, e = np.asarray(y, dtype=float), np.asarray(e, dtype=float)
    floor = {"perplexity": 1.0}.get(metric, 0.0)
    high = y + e if metric in ("perplexity", "loss") else np.minimum(y + e, 100.0)
    return np.maximum(y - e, floor), high


def clip_ylim(ax, metric: str) -> None:
    """Keep an accuracy axis inside [0, 100] (plus a point of margin for markers at 100)."""
    if metric != "perplexity":
        lo, hi = ax.get_ylim()
        ax.set_ylim(max(lo, 0.0), min(hi, 101.0))


def human_number(v: float) -> str:
    """2000 -> '2k', 1.5e6 -> '1.5M', 0.5 -> '0.5'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{suffix}"
    return f"{v:g}"


def _log_candidates(lo: float, hi: float, mantissas) -> list[float]:
    e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    return [m * 10.0 ** e for e in range(e0, e1 + 1) for m in mantissas
            if lo <= m * 10.0 ** e <= hi]


def log_ticks(ax, values: list[float], margin: float = 1.3) -> None:
    """At least three labelled ticks on a log x axis (1-2-5 steps, else 1-9 steps, else three
    rounded values), labelled 2k, 10k, ...; the limits hold every value with a margin."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    values = [v for v in values if v > 0]
    if not values:
        return
    lo, hi = min(values) / margin, max(values) * margin
    ticks = _log_candidates(lo, hi, (1, 2, 5))
    if len(ticks) < 3:
        ticks = _log_candidates(lo, hi, range(1, 10))
    if len(ticks) < 3:
        ticks = sorted({float(f"{t:.2g}") for t in np.geomspace(lo * 1.05, hi / 1.05, 3)})
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human_number(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def log2_ticks(ax, shots: list[int], most: int = 7) -> None:
    """Ticks at the shot counts (powers of two), thinned to ``most`` labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = sorted(set(shots))
    if not ticks:
        return
    step = max(1, math.ceil(len(ticks) / most))
    ax.xaxis.set_major_locator(FixedLocator(ticks[::-1][::step][::-1]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def time_unit(seconds: list[float]) -> tuple[str, float]:
    """The largest unit in which the median of ``seconds`` is at least 1: ``("days", 86400)``."""
    if not seconds:
        return TIME_UNITS[0]
    median = float(np.median(seconds))
    return [u for u in TIME_UNITS if median >= u[1]][-1] if median >= 1 else TIME_UNITS[0]


def save(fig, stem: Path) -> list[Path]:
    """``stem.pdf`` (vector, fonts embedded as TrueType, no timestamp) and ``stem.png``."""
    pdf, png = stem.with_suffix(".pdf"), stem.with_suffix(".png")
    fig.savefig(pdf, metadata={"CreationDate": None})
    # the constrained layout is settled by the first save: the PNG reuses it instead of
    # solving it again (a fifth of the plotting time; the same layout to the eye)
    fig.set_layout_engine("none")
    fig.savefig(png, dpi=PNG_DPI)
    return [pdf, png]


def _legend_below(fig, axes, ncol: int) -> None:
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(labels)),
                   frameon=False, handlelength=1.8, columnspacing=1.0)


def _figure(plt, panels: list, draw: Callable, ncol_legend: int):
    cols = min(len(panels), 2)
    nrows = math.ceil(len(panels) / cols)
    n_models = len({r["label"] for _, sel in panels for r in sel if "label" in r}) or 3
    legend_h = 0.18 * math.ceil(n_models / ncol_legend) + 0.2
    fig = plt.figure(figsize=(COLUMN_IN * cols + 0.2 * (cols - 1), PANEL_H_IN * nrows + legend_h),
                     layout="constrained")
    axes = list(fig.subplots(nrows, cols, squeeze=False).flat)
    notes = []
    for ax, (task, sel) in zip(axes, panels):
        notes.append(draw(ax, task, sel))
    used = axes[:len(panels)]
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    _legend_below(fig, used, ncol_legend)
    note = next((n for n in notes if n), None)
    if note:
        fig.suptitle(textwrap.fill(note, 55 * cols), fontsize=MIN_FONT_PT, style="italic")
    return fig


def write_task_figures(panels: list[tuple[str, list[dict]]], draw: Callable, fig_dir: Path,
                       stem: str, by_task: bool = True) -> list[Path]:
    """One figure of every panel (``fig_dir/stem.pdf|png``; two columns wide for several) and,
    with ``by_task``, one single-column figure per task under ``fig_dir/by_task/``.

    Args:
        panels: ``[(task, rows)]``, one panel each.
        draw: ``draw(ax, task, rows) -> note | None``; a note is printed above the figure.
    Returns:
        The paths written.
    """
    plt = pyplot()
    paths = []
    with plt.rc_context(RC):
        fig = _figure(plt, panels, draw, 4 if len(panels) > 1 else 2)
        paths += save(fig, fig_dir / stem)
        plt.close(fig)
        if by_task and len(panels) > 1:
            (fig_dir / "by_task").mkdir(exist_ok=True)
            for task, sel in panels:
                fig = _figure(plt, [(task, sel)], draw, 2)
                safe = re.sub(r"[^A-Za-z0-9_-]", "_", task)
                paths += save(fig, fig_dir / "by_task" / f"{stem}-{safe}")
                plt.close(fig)
    return paths
