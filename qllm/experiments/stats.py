"""Statistics that decide whether a hybrid beats a control: seed-paired differences, their 95%
confidence interval (t distribution), a paired t-test (``scipy.stats.ttest_rel``), Holm's
step-down correction for the number of comparisons, and a verdict in plain words.

Why not "a difference under twice its std is noise": with n seeds the 95% half-width of a mean
difference is ``t_{0.975, n-1} * sd / sqrt(n)``; for n = 3 that is 4.30 / 1.73 = 2.5 std, for
n = 5 it is 1.24 std. The interval and the corrected p-value say it exactly.

>>> c = paired_comparison([0.9, 0.8, 0.85], [0.7, 0.6, 0.66])
>>> round(c["mean"], 3), c["n"]
(0.197, 3)
"""

from __future__ import annotations

import math

from qllm.errors import ConfigError

ALPHA = 0.05  # family-wise error rate of the Holm correction, and 1 - confidence of intervals
# Controls that replace or cripple the circuit itself: a tie with them means the circuit is not
# why the hybrid does what it does.
CIRCUIT_CONTROLS = ("bottleneck", "no_entanglement")
CONTROL_WORDS = {"width": "the width-matched classical model",
                 "params": "the parameter-matched classical model",
                 "bottleneck": "the bottleneck control", "no_entanglement": "the circuit without "
                 "entanglement"}


def _check_pairs(a, b) -> tuple[list[float], list[float]]:
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) != len(b):
        raise ConfigError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    if not all(math.isfinite(x) for x in a + b):
        raise ConfigError("paired samples must be finite numbers (got NaN or inf)")
    return a, b


def paired_comparison(a, b, confidence: float = 1 - ALPHA) -> dict:
    """Mean of ``a[i] - b[i]`` (paired by seed) with a t interval and a two-sided paired t-test.

    Args:
        a, b: metric values of the two models, one per seed, in the same seed order.
        confidence: of the interval, in (0, 1).
    Returns:
        {"n", "mean", "sd", "half_width", "ci_low", "ci_high", "t", "p"}. With n < 2 nothing can
        be tested: half_width is inf and p is 1. When every difference is the same (sd = 0),
        the interval has zero width and p is 1 if the difference is 0, else 0 (scipy would
        return NaN: a deterministic difference is as decided as a difference can be).
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    a, b = _check_pairs(a, b)
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    if n == 0:
        raise ConfigError("paired_comparison needs at least one pair")
    mean = math.fsum(d) / n
    if n < 2:
        return {"n": n, "mean": mean, "sd": math.inf, "half_width": math.inf,
                "ci_low": -math.inf, "ci_high": math.inf, "t": 0.0, "p": 1.0}
    from scipy import stats

    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    # float noise: differences equal to ~1e-16 relative are one value, not a spread
    if sd <= 1e-12 * max(1.0, abs(mean)):
        sd, half = 0.0, 0.0
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        res = stats.ttest_rel(a, b)
        t, p = float(res.statistic), float(res.pvalue)
    return {"n": n, "mean": mean, "sd": sd, "half_width": float(half), "ci_low": mean - half,
            "ci_high": mean + half, "t": t, "p": p}


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order: sort ascending,
    multiply the i-th smallest (0-based) by ``m - i``, take the running maximum, cap at 1.
    Rejecting where the adjusted p <= alpha controls the family-wise error rate at alpha.

    Args:
        pvalues: raw p-values in [0, 1].
    Returns:
        adjusted p-values, same length and order.
    """
    ps = [float(p) for p in pvalues]
    if not all(0.0 <= p <= 1.0 for p in ps):  # also refuses NaN
        raise ConfigError(f"p-values must lie in [0, 1], got {ps}")
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def verdict(comparison: dict, p_adjusted: float, control: str, lower_is_better: bool = False,
            scale: float = 1.0, unit: str = "", alpha: float = ALPHA) -> str:
    """A plain-words verdict on one hybrid-vs-control comparison.

    Args:
        comparison: a ``paired_comparison`` of hybrid minus control.
        p_adjusted: its Holm-adjusted p-value.
        control: the control's name (``bottleneck``, ``no_entanglement``, ``width``, ``params``).
        lower_is_better: True for perplexity.
        scale / unit: how to print the difference (e.g. 100 and " points" for accuracy).
    Returns:
        e.g. "quantum-specific gain: not detected (-0.3 ± 1.2 points)" or
        "hybrid worse than bottleneck by 2.1 ± 0.9 points".
    """
    m, h = comparison["mean"] * scale, comparison["half_width"] * scale
    if comparison["n"] < 2:
        return f"not decidable: {comparison['n']} paired seed(s)"
    size = f"{abs(m):.2g} ± {h:.2g}{unit}" if h else f"{abs(m):.2g}{unit} (every seed)"
    if p_adjusted > alpha:
        what = ("quantum-specific gain: not detected" if control in CIRCUIT_CONTROLS
                else f"no difference from {CONTROL_WORDS.get(control, control)} detected")
        return f"{what} ({m:+.2g} ± {h:.2g}{unit})"
    better = (m < 0) if lower_is_better else (m > 0)
    return (f"hybrid {'better' if better else 'worse'} than "
            f"{CONTROL_WORDS.get(control, control)} by {size}")


# The controls each hybrid is compared with: the comparison's name -> where its label is found
# in the hybrid's job (``qllm.experiments.bench.task_jobs``).
COMPARISONS = ("width", "params", "bottleneck", "no_entanglement")


def _control_labels(job: dict) -> dict[str, str]:
    out = {"width": "classical-width", "params": job.get("param_baseline")}
    out.update(job.get("controls") or {})
    return {k: out[k] for k in COMPARISONS if out.get(k)}


def compare_to_controls(records: list[dict], metric_of, alpha: float = ALPHA) -> list[dict]:
    """Every hybrid against each of its controls, seed-paired, with Holm's correction over all
    comparisons of a task (one family per task).

    Args:
        records: run records (``qllm.experiments.aggregate.load_records``).
        metric_of: record -> its metric value.
    Returns:
        one dict per (task, hybrid, control): {"task", "hybrid", "control", "control_label",
        "metric", "seeds", **paired_comparison, "p_holm", "verdict"}, sorted by task, hybrid and
        the order of ``COMPARISONS``.
    """
    by_key = {(r["job"]["task"], r["job"]["label"], r["job"]["seed"]): r for r in records}
    rows, seen = [], set()
    for r in records:
        job = r["job"]
        if job["family"] != "hybrid" or (job["task"], job["label"]) in seen:
            continue
        seen.add((job["task"], job["label"]))
        runs = {s: rec for (t, lab, s), rec in by_key.items()
                if t == job["task"] and lab == job["label"]}
        for control, label in _control_labels(job).items():
            seeds = sorted(s for s in runs if (job["task"], label, s) in by_key)
            if not seeds:
                continue
            a = [metric_of(runs[s]) for s in seeds]
            b = [metric_of(by_key[(job["task"], label, s)]) for s in seeds]
            rows.append({"task": job["task"], "hybrid": job["label"], "control": control,
                         "control_label": label, "metric": r["metric"],
                         "seeds": " ".join(map(str, seeds)), **paired_comparison(a, b)})
    for task in dict.fromkeys(x["task"] for x in rows):
        family = [x for x in rows if x["task"] == task]
        for x, p in zip(family, holm([x["p"] for x in family])):
            ppl = x["metric"] == "perplexity"
            x["p_holm"] = p
            x["verdict"] = verdict(x, p, x["control"], lower_is_better=ppl,
                                   scale=1.0 if ppl else 100.0,
                                   unit=" ppl" if ppl else " points", alpha=alpha)
    order = {c: i for i, c in enumerate(COMPARISONS)}
    return sorted(rows, key=lambda x: (x["task"], x["hybrid"], order[x["control"]]))


def comparisons_markdown(rows: list[dict]) -> str:
    """The attribution table: hybrid - control (percentage points, or perplexity), 95% t
    interval, paired t-test p, Holm-adjusted p, verdict."""
    lines = ["| task | hybrid | control | n | Δ hybrid − control (95% CI) | p (paired t) | "
             "p (Holm) | verdict |", "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        k = 1.0 if x["metric"] == "perplexity" else 100.0
        lo, hi = x["ci_low"] * k, x["ci_high"] * k
        ci = f"{x['mean'] * k:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        lines.append(f"| {x['task']} | {x['hybrid']} | {x['control']} ({x['control_label']}) | "
                     f"{x['n']} | {ci} | {x['p']:.3g} | {x['p_holm']:.3g} | {x['verdict']} |")
    return "\n".join(lines)
