"""Pareto frontiers of a benchmark: per task, the models no other model beats on both the metric
(mean over seeds) and a cost (trainable parameters; projected QPU seconds per training epoch).

A model is dominated when another is at least as good on the metric and at least as cheap, and
strictly better on one of the two. Classical models cost 0 QPU seconds, so on that axis a hybrid
is on the frontier only if it beats every classical model's metric.

>>> non_dominated([(10, 0.9), (5, 0.9), (20, 0.95)])
[False, True, True]
"""

from __future__ import annotations

import math

from qllm.errors import ConfigError

COSTS = {"params": "parameters", "qpu_seconds_per_epoch": "QPU s / epoch"}


def non_dominated(points, lower_is_better: bool = False) -> list[bool]:
    """Which ``(cost, metric)`` points are on the Pareto frontier (cost minimised; metric
    maximised, or minimised with ``lower_is_better``).

    Args:
        points: (cost, metric) pairs of finite numbers.
    Returns:
        one flag per point, in order.
    """
    pts = [(float(c), -float(m) if lower_is_better else float(m)) for c, m in points]
    if not all(math.isfinite(c) and math.isfinite(m) for c, m in pts):
        raise ConfigError("Pareto points must be finite (cost, metric) pairs")
    return [not any(c2 <= c and m2 >= m and (c2 < c or m2 > m) for c2, m2 in pts)
            for c, m in pts]


def add_pareto(rows: list[dict]) -> None:
    """Set ``pareto_<cost>`` (True/False) on every aggregated row, per task, for each cost in
    ``COSTS`` (a missing cost counts as 0)."""
    for task in dict.fromkeys(r["task"] for r in rows):
        sel = [r for r in rows if r["task"] == task]
        ppl = sel[0]["metric"] == "perplexity"
        for cost in COSTS:
            flags = non_dominated([(r.get(cost) or 0, r["metric_mean"]) for r in sel], ppl)
            for r, flag in zip(sel, flags):
                r[f"pareto_{cost}"] = flag


def pareto_markdown(rows: list[dict]) -> str:
    """The non-dominated models of each task, against parameters and against QPU time."""
    lines = ["| task | frontier: metric vs parameters | frontier: metric vs projected QPU s / "
             "epoch |", "|---|---|---|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        sel = [r for r in rows if r["task"] == task]
        cells = []
        for cost in COSTS:
            front = sorted((r for r in sel if r.get(f"pareto_{cost}")),
                           key=lambda r: r.get(cost) or 0)
            cells.append(", ".join(f"{r['label']} ({_metric(r)}, {_cost(r.get(cost))})"
                                   for r in front))
        lines.append(f"| {task} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _metric(r: dict) -> str:
    if r["metric"] == "perplexity":
        return f"{r['metric_mean']:.2f} ppl"
    return f"{100 * r['metric_mean']:.1f}%"


def _cost(x) -> str:
    return "0" if not x else f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"
