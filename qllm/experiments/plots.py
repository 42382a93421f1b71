"""Benchmark figures (matplotlib, Agg): metric vs parameters, metric vs projected QPU seconds (a
Pareto view), learning curves with seed bands, and accuracy vs shots.

Every function takes aggregated rows / run records (``qllm.experiments.aggregate``) and a path, and writes
one PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

MARKERS = {"classical-width": "s", "classical-params": "D", "hybrid": "o", "bottleneck": "v",
           "no_entanglement": "^"}
LINES = {"classical-width": "--", "classical-params": ":", "hybrid": "-", "bottleneck": "-.",
         "no_entanglement": (0, (1, 1))}
PARAM_COLORS = ("black", "tab:brown", "darkslategray", "olive", "navy", "maroon")
HYBRID_COLORS = ("tab:green", "tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:pink",
                 "tab:cyan", "yellowgreen", "gold", "slateblue", "teal", "coral")


def _colors(sel: list[dict]) -> dict:
    """One color per model of a task, the same in every figure: gray for the width-matched
    baseline, dark colors for parameter-matched ones, bright ones for hybrids."""
    out, n_param, n_hyb = {}, 0, 0
    for r in sel:
        if r["family"] == "classical-width":
            out[r["label"]] = "tab:gray"
        elif r["family"] == "classical-params":
            out[r["label"]] = PARAM_COLORS[n_param % len(PARAM_COLORS)]
            n_param += 1
        else:
            out[r["label"]] = HYBRID_COLORS[n_hyb % len(HYBRID_COLORS)]
            n_hyb += 1
    return out


def _legend(ax) -> None:
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ylabel(metric: str) -> str:
    return "test perplexity (lower is better)" if metric == "perplexity" else "test accuracy (%)"


def _scale(metric: str) -> float:
    return 1.0 if metric == "perplexity" else 100.0


def _tasks(rows):
    return list(dict.fromkeys(r["task"] for r in rows))


def _grid(plt, n: int, width: float = 7.0, height: float = 3.6):
    cols = min(n, 2)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, height * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _err(s):
    return 0.0 if s is None or (isinstance(s, float) and math.isnan(s)) else s


def plot_vs(rows: list[dict], path: Path, x_key: str, x_label: str, title: str,
            classical_as_lines: bool = False) -> Path:
    """Metric (mean ± std over seeds) against ``x_key`` per task, log x. With
    ``classical_as_lines``, classical models (x = 0 on a log axis) are drawn as horizontal
    lines with their ± std band."""
    plt = _plt()
    tasks = _tasks(rows)
    fig, axes = _grid(plt, len(tasks))
    for ax, task in zip(axes, tasks):
        sel = [r for r in rows if r["task"] == task]
        k = _scale(sel[0]["metric"])
        colors = _colors(sel)
        for r in sel:
            color = colors[r["label"]]
            y, e = r["metric_mean"] * k, _err(r["metric_std"]) * k
            x = r.get(x_key) or 0
            if classical_as_lines and r["family"] != "hybrid":
                ax.axhline(y, color=color, ls=LINES[r["family"]], label=f"{r['label']} (0 QPU s)")
                ax.axhspan(y - e, y + e, color=color, alpha=0.07)
                continue
            if x <= 0:
                continue
            ax.errorbar(x, y, yerr=e, fmt=MARKERS[r["family"]], color=color, capsize=3,
                        label=r["label"])
        ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(_ylabel(sel[0]["metric"]))
        ax.set_title(f"{task} (n = {sel[0]['n_seeds']} seeds)")
        ax.grid(alpha=0.3)
        _legend(ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_learning_curves(rows: list[dict], records: list[dict], path: Path) -> Path:
    """Test metric per epoch: the mean over seeds as a line, ± std as a band."""
    import numpy as np

    plt = _plt()
    tasks = _tasks(rows)
    fig, axes = _grid(plt, len(tasks))
    for ax, task in zip(axes, tasks):
        sel = [r for r in rows if r["task"] == task]
        colors = _colors(sel)
        metric = sel[0]["metric"]
        key = "val_perplexity" if metric == "perplexity" else "val_accuracy"  # never the test
        k = _scale(metric)
        for r in sel:
            runs = [rec for rec in records
                    if rec["job"]["task"] == task and rec["job"]["label"] == r["label"]]
            n = min(len(rec["history"]) for rec in runs)
            if n == 0:
                continue
            ys = np.array([[h[key] * k for h in rec["history"][:n]] for rec in runs])
            xs = [h["epoch"] for h in runs[0]["history"][:n]]
            color = colors[r["label"]]
            mean = ys.mean(0)
            std = ys.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
            ax.plot(xs, mean, color=color, marker=".", ls=LINES[r["family"]],
                    label=f"{r['label']} (n={len(runs)})")
            ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.15)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(_ylabel(metric))
        ax.set_title(task)
        ax.grid(alpha=0.3)
        _legend(ax)
    fig.suptitle("learning curves on the validation split: mean over seeds, band = ± 1 std",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_shots(nrows: list[dict], path: Path) -> Path:
    """Accuracy vs shots (native sampler, mean ± std over sampler seeds), exact as a line, and
    fake-device points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    exact = [r for r in nrows if r["shots"] == "exact"]
    sampled = sorted((r for r in nrows if r["shots"] != "exact" and r["backend"] == "torch"),
                     key=lambda r: r["shots"])
    devices = [r for r in nrows if r["backend"] != "torch"]
    if sampled:
        ax.errorbar([r["shots"] for r in sampled], [100 * r["accuracy_mean"] for r in sampled],
                    yerr=[100 * _err(r["accuracy_std"]) for r in sampled], fmt="o-", capsize=3,
                    label=f"native engine, shot sampling (± std, {sampled[0]['repeats']} seeds)")
    for r in exact:
        ax.axhline(100 * r["accuracy_mean"], color="black", ls="--",
                   label="exact expectation values")
    for r in devices:
        ax.plot(r["shots"], 100 * r["accuracy_mean"], "r*", ms=12,
                label=f"{r['backend']} calibrated noise, {r['shots']} shots")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("shots per circuit")
    ax.set_ylabel("test accuracy (%)")
    if nrows:
        r = nrows[0]
        ax.set_title(f"{r['task']}: {r['model']} ({r['source_run']}), first {r['n_test']} test "
                     "images", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pareto(rows: list[dict], path: Path) -> Path:
    """Per task, metric against parameters (left) and projected QPU seconds per epoch (right,
    symlog: classical models sit at 0); models on the Pareto frontier
    (``qllm.experiments.pareto``) are filled and joined by the frontier's steps, dominated ones
    hollow."""
    from qllm.experiments.pareto import COSTS

    plt = _plt()
    tasks = _tasks(rows)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 3.4 * len(tasks)), squeeze=False)
    for (ax_p, ax_q), task in zip(axes, tasks):
        sel = [r for r in rows if r["task"] == task]
        k, colors = _scale(sel[0]["metric"]), _colors(sel)
        for ax, cost in ((ax_p, "params"), (ax_q, "qpu_seconds_per_epoch")):
            for r in sel:
                on = r.get(f"pareto_{cost}")
                ax.plot(r.get(cost) or 0, r["metric_mean"] * k, MARKERS[r["family"]], ms=7,
                        color=colors[r["label"]], mfc=colors[r["label"]] if on else "none",
                        label=r["label"] + (" (frontier)" if on else ""))
            front = sorted((r for r in sel if r.get(f"pareto_{cost}")),
                           key=lambda r: r.get(cost) or 0)
            ax.step([r.get(cost) or 0 for r in front], [r["metric_mean"] * k for r in front],
                    where="post", color="black", lw=0.8, alpha=0.6)
            ax.set_xscale("log" if cost == "params" else "symlog")
            ax.set_xlabel(COSTS[cost])
            ax.set_ylabel(_ylabel(sel[0]["metric"]))
            ax.set_title(f"{task}: Pareto frontier (filled = non-dominated)", fontsize=9)
            ax.grid(alpha=0.3)
        _legend(ax_q)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path


def plot_all(out_dir: str | Path, rows: list[dict], records: list[dict],
             nrows: list[dict]) -> list[Path]:
    """Write every figure under ``out_dir/figures/``."""
    fig_dir = Path(out_dir) / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    if not rows:
        return []
    paths = [
        plot_vs(rows, fig_dir / "accuracy_vs_params.png", "params", "trainable parameters",
                "test metric vs parameters (mean ± std over seeds)"),
        plot_vs(rows, fig_dir / "accuracy_vs_qpu_seconds.png", "qpu_seconds_per_epoch",
                "projected QPU seconds per training epoch",
                "test metric vs projected QPU time per training epoch (parameter-shift, "
                "1024 shots, "
                "IBM Heron profile); classical models need none: lines with ± std bands", True),
        plot_learning_curves(rows, records, fig_dir / "learning_curves.png"),
        plot_pareto(rows, fig_dir / "pareto.png"),
    ]
    if nrows:
        paths.append(plot_shots(nrows, fig_dir / "accuracy_vs_shots.png"))
    return paths
