"""Benchmark figures for a paper (matplotlib, Agg), one figure per question:

- ``accuracy_vs_params``: does a hybrid beat a classical model of its size?
- ``accuracy_vs_qpu_seconds``: what does its accuracy cost in projected QPU time?
- ``learning_curves``: how does training go? (the validation metric when the records hold one;
  else the training loss, and the figure says so: the test set is not for curves)
- ``accuracy_vs_shots``: how many shots does inference need?

Each is written as vector PDF and 300 dpi PNG. Panels are one column wide (3.4 in) with fonts of
at least ``MIN_FONT_PT``; a figure of several tasks is two columns (7 in) with one legend below
the panels, and every task also gets a single-column figure under ``figures/by_task/``. A model
has one colour (and marker) in every panel and figure. Error bars and bands of accuracies are
clipped to [0, 100]%.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from qllm.experiments import plot_style as style

MIN_FONT_PT = style.MIN_FONT_PT


def _task_axes(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    return [(t, [r for r in rows if r["task"] == t]) for t in tasks]


def _err(s) -> float:
    return 0.0 if s is None or (isinstance(s, float) and math.isnan(s)) else float(s)


def _title(task: str, sel: list[dict]) -> str:
    seeds = sorted({r["n_seeds"] for r in sel})
    return f"{task} (n = {'/'.join(map(str, seeds))} seeds)"


def draw_vs(ax, sel: list[dict], colors: dict, x_key: str, classical_as_lines: bool,
            x_scale: float = 1.0) -> None:
    """One task's metric (mean ± std over seeds) against ``x_key`` / ``x_scale`` on ``ax``."""
    metric = sel[0]["metric"]
    k = style.metric_scale(metric)
    xs = []
    for r in sel:
        label, color = r["label"], colors[r["label"]]
        y, e = r["metric_mean"] * k, _err(r["metric_std"]) * k
        lo, hi = style.clip_band(y, e, metric)
        if classical_as_lines and r["family"] != "hybrid":
            ax.axhline(y, color=color, ls=style.LINES[r["family"]], lw=1.2,
                       label=style.legend_label(label), gid=f"model:{label}")
            ax.axhspan(lo, hi, color=color, alpha=0.1, lw=0)
            continue
        x = (r.get(x_key) or 0) / x_scale
        if x <= 0:
            continue
        xs.append(x)
        bars = ax.errorbar(x, y, yerr=[[y - lo], [hi - y]], fmt=style.MARKERS[r["family"]],
                           color=color, ms=5, capsize=2.5, lw=1, label=style.legend_label(label))
        bars[0].set_gid(f"model:{label}")
    ax.set_xscale("log")
    style.log_ticks(ax, xs)
    ax.set_ylabel(style.metric_label(metric))
    style.clip_ylim(ax, metric)
    ax.grid(alpha=0.3, lw=0.5)


def _vs_figures(rows, stem: str, x_key: str, x_label: str, classical_as_lines: bool,
                fig_dir: Path, x_scale: float = 1.0) -> list[Path]:
    colors = style.model_colors(rows)

    def draw(ax, task, sel):
        draw_vs(ax, sel, colors, x_key, classical_as_lines, x_scale)
        ax.set_xlabel(x_label)
        ax.set_title(_title(task, sel))

    return style.write_task_figures(_task_axes(rows), draw, fig_dir, stem)


def qpu_unit(rows: list[dict]) -> tuple[str, float]:
    """The time unit that reads best for the rows' QPU seconds per epoch: (name, seconds)."""
    values = [r.get("qpu_seconds_per_epoch") or 0 for r in rows]
    return style.time_unit([v for v in values if v > 0])


def plot_accuracy_vs_params(rows: list[dict], fig_dir: Path) -> list[Path]:
    return _vs_figures(rows, "accuracy_vs_params", "params", "trainable parameters", False,
                       fig_dir)


def plot_accuracy_vs_qpu(rows: list[dict], fig_dir: Path) -> list[Path]:
    unit, seconds = qpu_unit(rows)
    return _vs_figures(rows, "accuracy_vs_qpu_seconds", "qpu_seconds_per_epoch",
                       f"projected QPU time per epoch ({unit})", True, fig_dir, seconds)


def curve_of(records: list[dict], metric: str) -> tuple[str, str]:
    """What the learning curves show: ``(history key, y label)``. The validation metric when
    every record's history has one; else the training loss (epoch mean of the step losses)."""
    key = "val_perplexity" if metric == "perplexity" else "val_accuracy"
    if records and all(rec["history"] and key in rec["history"][0] for rec in records):
        return key, "validation " + style.metric_label(metric).removeprefix("test ")
    return "train_loss_mean", "training loss (epoch mean)"


def _epoch_values(rec: dict, key: str, scale: float) -> list[float]:
    if key != "train_loss_mean":
        return [h[key] * scale for h in rec["history"]]
    losses, out, start = rec.get("losses") or [], [], 0
    for h in rec["history"]:
        chunk = losses[start:h["step"]] or [h["train_loss"]]
        out.append(float(np.mean(chunk)))
        start = h["step"]
    return out


def draw_curves(ax, sel: list[dict], records: list[dict], colors: dict) -> str:
    """One task's learning curves on ``ax`` (mean over seeds, band ± 1 std); returns the key."""
    metric = sel[0]["metric"]
    task_records = [rec for rec in records if rec["job"]["task"] == sel[0]["task"]]
    key, ylabel = curve_of(task_records, metric)
    scale = style.metric_scale(metric) if key.startswith("val_") else 1.0
    bounded = metric if key.startswith("val_") else "loss"
    for r in sel:
        runs = [rec for rec in task_records if rec["job"]["label"] == r["label"]]
        n = min((len(rec["history"]) for rec in runs), default=0)
        if n == 0:
            continue
        ys = np.array([_epoch_values(rec, key, scale)[:n] for rec in runs])
        xs = [h["epoch"] for h in runs[0]["history"][:n]]
        mean = ys.mean(0)
        std = ys.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
        lo, hi = style.clip_band(mean, std, bounded)
        color = colors[r["label"]]
        ax.plot(xs, mean, color=color, marker=style.MARKERS[r["family"]], ms=3, lw=1.2,
                ls=style.LINES[r["family"]], label=style.legend_label(r["label"]),
                gid=f"model:{r['label']}")
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(ylabel)
    if key.startswith("val_"):
        style.clip_ylim(ax, metric)
    ax.grid(alpha=0.3, lw=0.5)
    return key


NO_VALIDATION = ("no validation split in these records: training loss shown "
                 "(the test set is scored once, at the end)")


def plot_learning_curves(rows: list[dict], records: list[dict], fig_dir: Path) -> list[Path]:
    colors = style.model_colors(rows)

    def draw(ax, task, sel):
        key = draw_curves(ax, sel, records, colors)
        ax.set_title(_title(task, sel))
        return None if key.startswith("val_") else NO_VALIDATION

    return style.write_task_figures(_task_axes(rows), draw, fig_dir, "learning_curves")


def draw_shots(ax, nrows: list[dict]) -> None:
    """Accuracy vs shots (native sampler, mean ± std over sampler seeds, clipped to [0, 100]%),
    exact as a line, fake-device points."""
    exact = [r for r in nrows if r["shots"] == "exact"]
    sampled = sorted((r for r in nrows if r["shots"] != "exact" and r["backend"] == "torch"),
                     key=lambda r: r["shots"])
    if sampled:
        y = np.array([100 * r["accuracy_mean"] for r in sampled])
        lo, hi = style.clip_band(y, np.array([100 * _err(r["accuracy_std"]) for r in sampled]),
                                 "accuracy")
        ax.errorbar([r["shots"] for r in sampled], y, yerr=[y - lo, hi - y], fmt="o-", ms=4,
                    lw=1, capsize=2.5, color=style.SHOT_COLOR,
                    label=f"shot sampling (± std, {sampled[0]['repeats']} seeds)")
    for r in exact:
        ax.axhline(100 * r["accuracy_mean"], color="black", ls="--", lw=1,
                   label="exact expectation values")
    for r in (r for r in nrows if r["backend"] != "torch"):
        ax.plot(r["shots"], 100 * r["accuracy_mean"], "*", color=style.DEVICE_COLOR, ms=10,
                label=f"{r['backend']} noise, {r['shots']} shots")
    ax.set_xscale("log", base=2)
    style.log2_ticks(ax, [r["shots"] for r in sampled])
    ax.set_xlabel("shots per circuit")
    ax.set_ylabel("test accuracy (%)")
    style.clip_ylim(ax, "accuracy")
    if nrows:
        r = nrows[0]
        ax.set_title(f"{r['task']}: {r['model']}, first {r['n_test']} test images")
    ax.grid(alpha=0.3, lw=0.5)


def plot_shots(nrows: list[dict], fig_dir: Path) -> list[Path]:
    def draw(ax, task, sel):
        draw_shots(ax, sel)

    return style.write_task_figures([("all", nrows)], draw, fig_dir, "accuracy_vs_shots",
                                    by_task=False)


CAPTIONS = {
    "accuracy_vs_params": "Test metric against trainable parameters, mean ± 1 std over seeds "
                          "(error bars clipped to [0, 100]%).",
    "accuracy_vs_qpu_seconds": "Test metric against the projected QPU time of one training "
                               "epoch (parameter shift, 1024 shots, IBM Heron profile); "
                               "classical models need none and are drawn as lines with ± 1 std "
                               "bands.",
    "learning_curves": "Learning curves: mean over seeds, band ± 1 std.",
    "accuracy_vs_shots": "Test accuracy against shots per circuit of one trained hybrid.",
    "pareto_params": "Test metric against trainable parameters; filled markers and the step line "
                     "are the Pareto frontier (no model is better on both), hollow ones dominated.",
    "pareto_qpu": "Test metric against projected QPU time per training epoch (symlog: classical "
                  "models at 0); filled markers and the step line are the Pareto frontier.",
}


def draw_pareto(ax, sel: list[dict], colors: dict, cost: str) -> None:
    """One task's metric against ``cost``: models on the Pareto frontier
    (``qllm.experiments.pareto``) filled and joined by the frontier's steps, dominated ones
    hollow. QPU time is on a symlog axis: classical models sit at 0."""
    from qllm.experiments.pareto import COSTS

    metric = sel[0]["metric"]
    k = style.metric_scale(metric)
    for r in sel:
        on = r.get(f"pareto_{cost}")
        c = colors[r["label"]]
        ax.plot(r.get(cost) or 0, r["metric_mean"] * k, style.MARKERS.get(r["family"], "o"),
                ms=5, color=c, mfc=c if on else "none", label=style.legend_label(r["label"]))
    front = sorted((r for r in sel if r.get(f"pareto_{cost}")), key=lambda r: r.get(cost) or 0)
    ax.step([r.get(cost) or 0 for r in front], [r["metric_mean"] * k for r in front],
            where="post", color="black", lw=0.8, alpha=0.6)
    ax.set_xscale("log" if cost == "params" else "symlog")
    ax.set_xlabel(COSTS[cost])
    ax.set_ylabel(style.metric_label(metric))
    ax.grid(alpha=0.3)


def plot_pareto(rows: list[dict], fig_dir: Path) -> list[Path]:
    """``pareto_params`` and ``pareto_qpu``: one figure per cost (filled = non-dominated)."""
    colors = style.model_colors(rows)
    paths = []
    for cost, stem in (("params", "pareto_params"), ("qpu_seconds_per_epoch", "pareto_qpu")):
        def draw(ax, task, sel, cost=cost):
            draw_pareto(ax, sel, colors, cost)
            ax.set_title(_title(task, sel))
        paths += style.write_task_figures(_task_axes(rows), draw, fig_dir, stem, by_task=False)
    return paths


def plot_all(out_dir: str | Path, rows: list[dict], records: list[dict],
             nrows: list[dict]) -> list[Path]:
    """Write every figure (PDF and PNG) under ``out_dir/figures/`` and its caption in
    ``figures/captions.md``. Returns the paths written."""
    fig_dir = Path(out_dir) / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    if not rows:
        return []
    paths = (plot_accuracy_vs_params(rows, fig_dir) + plot_accuracy_vs_qpu(rows, fig_dir)
             + plot_learning_curves(rows, records, fig_dir) + plot_pareto(rows, fig_dir))
    if nrows:
        paths += plot_shots(nrows, fig_dir)
    captions = dict(CAPTIONS)
    if curve_of(records, rows[0]["metric"])[0] == "train_loss_mean":
        captions["learning_curves"] += " " + NO_VALIDATION[0].upper() + NO_VALIDATION[1:] + "."
    (fig_dir / "captions.md").write_text("".join(
        f"- `{name}.pdf`: {text}\n" for name, text in captions.items()
        if (fig_dir / f"{name}.pdf").exists()))
    return paths
