"""Aggregation: run JSON files -> one row per (task, model) with mean +- std over seeds, the
parameter match, paired differences against the classical baselines, and the cost ledger; as CSV
and a markdown table. ``aggregate`` is a pure function of the records (the same files give the
same bytes, whatever order they are listed in).

Statistics: ``std`` is the sample standard deviation (ddof=1) over seeds; ``n`` says how many
seeds. ``Δ`` columns pair runs by seed (same data order and split) and give the mean +- std of the
per-seed differences. Whether a difference is real is decided by ``qllm.experiments.stats``: a 95%
t interval, a paired t-test and Holm's correction over a task's comparisons, with a verdict
(``vs_<control>_*`` columns; ``attribution.md``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

TASK_ORDER = ("digits", "meaning", "parity", "copy", "sort", "stdlib_text", "text")
FAMILY_ORDER = ("classical-width", "classical-params", "hybrid", "bottleneck", "no_entanglement")
LEDGER_KEYS = ("qubits", "quantum_layers", "two_qubit_gates", "executions_per_epoch",
               "qpu_seconds_per_epoch", "executions_per_token", "qpu_seconds_per_token",
               "flops_per_token")


def load_records(paths) -> list[dict]:
    """Read run JSON files, sorted by run id (so the listing order does not matter)."""
    records = [json.loads(Path(p).read_text()) for p in paths]
    return sorted(records, key=lambda r: r["job"]["run_id"])


def _mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [float(x) for x in xs]
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else float("nan"))


def metric_of(record: dict) -> float:
    """The task metric: perplexity for text LM, else accuracy (a fraction)."""
    final = record["final"]
    return final["perplexity"] if record["metric"] == "perplexity" else final["accuracy"]


def _paired(runs: list[dict], ref: list[dict]) -> tuple[float, float, int]:
    ref_by_seed = {r["job"]["seed"]: metric_of(r) for r in ref}
    diffs = [metric_of(r) - ref_by_seed[r["job"]["seed"]] for r in runs
             if r["job"]["seed"] in ref_by_seed]
    if not diffs:
        return float("nan"), float("nan"), 0
    m, s = _mean_std(diffs)
    return m, s, len(diffs)


def _sort_key(row: dict):
    t = row["task"]
    # a hybrid's controls (labels "<hybrid>~<control>") sort right after it
    family = min(FAMILY_ORDER.index(row["family"]), FAMILY_ORDER.index("hybrid"))
    return (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t, family, row["label"])


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (task, label): metric mean/std/n, params, wall time, ledger, parameter match,
    and seed-paired differences against the width- and parameter-matched classical models."""
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(records, key=lambda r: r["job"]["run_id"]):
        groups.setdefault((r["job"]["task"], r["job"]["label"]), []).append(r)
    rows = []
    for (task, label), runs in groups.items():
        job = runs[0]["job"]
        m, s = _mean_std([metric_of(r) for r in runs])
        am, as_ = _mean_std([r["final"]["accuracy"] for r in runs])
        wm, ws = _mean_std([r["wall_time_s"] for r in runs])
        var = job.get("variant") or {}
        row = {"task": task, "label": label, "family": job["family"],
               "attn": var.get("attn", "classical"), "ffn": var.get("ffn", "classical"),
               "ansatz": var.get("ansatz", ""), "n_qubits": var.get("n_qubits", 0),
               "metric": runs[0]["metric"], "n_seeds": len(runs),
               "seeds": " ".join(str(r["job"]["seed"]) for r in runs),
               "metric_mean": m, "metric_std": s, "accuracy_mean": am, "accuracy_std": as_,
               "params": runs[0]["params"]["total"], "quantum_params": runs[0]["params"]["quantum"],
               "n_embd": runs[0]["model_config"]["n_embd"],
               "mlp_ratio": runs[0]["model_config"]["mlp_ratio"],
               "epochs": runs[0]["train_config"]["epochs"], "wall_s_mean": wm, "wall_s_std": ws}
        ledger = ((runs[0].get("cost") or {}).get("ledger")) or {}
        row.update({k: ledger.get(k) for k in LEDGER_KEYS})
        pm = job.get("param_match") or {}
        row["param_ref"] = job.get("matched_to") or job.get("param_baseline") or ""
        row["param_rel_diff"] = pm.get("rel_diff", float("nan"))
        row["param_within_10pct"] = (abs(pm["rel_diff"]) <= 0.10) if pm else None
        for ref_label, key in (("classical-width", "d_width"),
                               (job.get("param_baseline"), "d_params")):
            ref = groups.get((task, ref_label), []) if ref_label else []
            d, ds, n = _paired(runs, ref) if job["family"] == "hybrid" else (math.nan, math.nan, 0)
            row[f"{key}_mean"], row[f"{key}_std"], row[f"{key}_n"] = d, ds, n
        rows.append(row)
    _add_comparisons(rows, records)
    from qllm.experiments.pareto import add_pareto

    rows = sorted(rows, key=_sort_key)
    add_pareto(rows)
    return rows


def _add_comparisons(rows: list[dict], records: list[dict]) -> None:
    """``vs_<control>_{mean,ci_low,ci_high,p_holm,verdict}`` on every row (None where the row
    is not a hybrid or has no such control), so CSV rows share one header."""
    from qllm.experiments.stats import COMPARISONS, compare_to_controls

    found = {(c["task"], c["hybrid"], c["control"]): c
             for c in compare_to_controls(records, metric_of)}
    for row in rows:
        for control in COMPARISONS:
            c = found.get((row["task"], row["label"], control))
            for k in ("mean", "ci_low", "ci_high", "p_holm", "verdict"):
                row[f"vs_{control}_{k}"] = c[k] if c else None


def to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _pm(m, s, pct: bool, digits: int = 1) -> str:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "—"
    k = 100 if pct else 1
    sd = "" if s is None or math.isnan(s) else f" ± {s * k:.{digits}f}"
    return f"{m * k:.{digits}f}{sd}"


def _sci(x) -> str:
    if x is None or x == 0:
        return "0" if x == 0 else "—"
    return f"{x:.3g}"


def _qpu_time(seconds) -> str:
    from qllm.cost.format import human_seconds

    if seconds is None:
        return "—"
    return human_seconds(seconds) if seconds else "0"  # classical models need no QPU


def _param_cell(r: dict) -> str:
    if r["family"] == "classical-width":
        return "— (same width as the hybrids)"
    if not r["param_ref"]:
        return "—"
    ok = "✓ within 10%" if r["param_within_10pct"] else "✗ NOT within 10%"
    if r["family"] == "classical-params":
        return f"{r['param_rel_diff']:+.1%} vs {r['param_ref']} {ok}"
    return f"baseline {r['param_ref']}: {r['param_rel_diff']:+.1%} {ok}"


def to_markdown(rows: list[dict]) -> str:
    """The results table: metric as % accuracy (perplexity for text LM, lower is better)."""
    head = ("| task | model | n_embd×mlp | metric (mean ± std) | n | Δ vs width-matched | "
            "Δ vs param-matched | params | param match | train s | qubits | 2q gates (torino) | "
            "circuit executions / epoch | QPU time / epoch | executions / token | QPU time / token |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        pct = r["metric"] != "perplexity"
        unit = "% acc" if pct else " ppl"
        lines.append(
            f"| {r['task']} | {r['label']} | {r['n_embd']}×{r['mlp_ratio']} | "
            f"{_pm(r['metric_mean'], r['metric_std'], pct, 1 if pct else 2)}{unit} | "
            f"{r['n_seeds']} | {_pm(r['d_width_mean'], r['d_width_std'], pct, 1 if pct else 2)} | "
            f"{_pm(r['d_params_mean'], r['d_params_std'], pct, 1 if pct else 2)} | "
            f"{r['params']:,} | {_param_cell(r)} | "
            f"{_pm(r['wall_s_mean'], r['wall_s_std'], False, 0)} | "
            f"{r['qubits'] or 0} | {r['two_qubit_gates'] or 0} | "
            f"{_sci(r['executions_per_epoch'])} | {_qpu_time(r['qpu_seconds_per_epoch'])} | "
            f"{_sci(r['executions_per_token'])} | "
            f"{_qpu_time(r['qpu_seconds_per_token'])} |")
    return "\n".join(lines)


def noise_rows(records: list[dict]) -> list[dict]:
    rows = []
    for rec in sorted(records, key=lambda r: r["job"]["run_id"]):
        for r in rec["rows"]:
            rows.append({"task": rec["task"], "model": rec["job"]["label"],
                         "source_run": rec["job"]["source_run"], "n_test": rec["n_test"],
                         "backend": r["backend"], "shots": r["shots"] or "exact",
                         "accuracy_mean": r["accuracy_mean"], "accuracy_std": r["accuracy_std"],
                         "repeats": r["repeats"], "seconds": r["seconds"]})
    return rows


def noise_markdown(rows: list[dict]) -> str:
    lines = [("| task | model (run) | backend | shots | test accuracy % (mean ± std) | sampler "
              "seeds | test subset | eval s |"), "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        std = r["accuracy_std"] if r["repeats"] > 1 else math.nan
        lines.append(f"| {r['task']} | {r['model']} ({r['source_run']}) | {r['backend']} | "
                     f"{r['shots']} | {_pm(r['accuracy_mean'], std, True)} | "
                     f"{r['repeats']} | first {r['n_test']} | {r['seconds']:.1f} |")
    return "\n".join(lines)


HEADLINE_COLUMNS = ("model", "metric", "params", "qubits", "train s", "QPU time/epoch")


def headline_rows(rows: list[dict], task: str) -> list[list[str]]:
    """The narrow view of one task: model, metric (mean ± std), params, qubits, train s, QPU
    time per epoch in human units."""
    out = []
    for r in (r for r in rows if r["task"] == task):
        pct = r["metric"] != "perplexity"
        out.append([r["label"], _pm(r["metric_mean"], r["metric_std"], pct, 1 if pct else 2),
                    f"{r['params']:,}", str(r["qubits"] or 0), f"{r['wall_s_mean']:.1f}",
                    _qpu_time(r["qpu_seconds_per_epoch"])])
    return out


def headline(rows: list[dict], task: str = "digits") -> str:
    """Side by side for one task, under 100 columns: every model's metric, params and QPU time."""
    sel = [r for r in rows if r["task"] == task]
    if not sel:
        return ""
    unit = "%" if sel[0]["metric"] != "perplexity" else ""
    out = [f"{task}: test {sel[0]['metric']}{' (%)' if unit else ''} over {sel[0]['n_seeds']} "
           "seeds (mean ± std)",
           f"{HEADLINE_COLUMNS[0]:<34} " + " ".join(f"{c:>{w}}" for c, w in zip(
               HEADLINE_COLUMNS[1:], (14, 8, 6, 8, 14)))]
    for cells in headline_rows(rows, task):
        out.append(f"{cells[0]:<34} " + " ".join(f"{c:>{w}}" for c, w in zip(
            cells[1:], (14, 8, 6, 8, 14))))
    return "\n".join(out)


class SummaryTable(list):
    """The aggregated rows (a list of dicts, as ``aggregate`` returns) that display in a
    notebook: one narrow HTML table per task (``_repr_html_``; the full 16-column table is
    ``_repr_markdown_`` and ``summary.md``)."""

    def _repr_markdown_(self) -> str:
        return to_markdown(list(self))

    def _repr_html_(self) -> str:
        from qllm.cost.format import html_table

        parts = []
        for task in dict.fromkeys(r["task"] for r in self):
            sel = [r for r in self if r["task"] == task]
            metric = "test perplexity" if sel[0]["metric"] == "perplexity" else "test accuracy %"
            parts.append(f"<h4>{task}: {metric}, {sel[0]['n_seeds']} seeds (mean ± std)</h4>"
                         + html_table(list(HEADLINE_COLUMNS), headline_rows(self, task)))
        return "<div>" + "".join(parts) + "</div>"


def write_outputs(out_dir: str | Path, progress: bool = True) -> SummaryTable:
    """Aggregate ``out_dir/runs/*.json`` (and ``noise/*.json``) into ``summary.csv``,
    ``summary.md``, ``noise.csv``, ``noise.md`` and ``figures/`` (PDF + PNG); print a narrow
    headline per task and where the full tables are. Returns the rows (a ``SummaryTable``)."""
    out_dir = Path(out_dir)
    records = load_records(sorted((out_dir / "runs").glob("*.json")))
    rows = aggregate(records)
    (out_dir / "summary.csv").write_text(to_csv(rows))
    md = to_markdown(rows)
    nrows = noise_rows(load_records(sorted((out_dir / "noise").glob("*.json"))))
    nmd = noise_markdown(nrows) if nrows else ""
    (out_dir / "summary.md").write_text(md + "\n")
    from qllm.experiments.stats import compare_to_controls, comparisons_markdown

    comparisons = compare_to_controls(records, metric_of)
    amd = comparisons_markdown(comparisons)
    (out_dir / "attribution.csv").write_text(to_csv(comparisons))
    (out_dir / "attribution.md").write_text(amd + "\n")
    from qllm.experiments.pareto import pareto_markdown

    pmd = pareto_markdown(rows)
    (out_dir / "pareto.md").write_text(pmd + "\n")
    if nrows:
        (out_dir / "noise.csv").write_text(to_csv(nrows))
        (out_dir / "noise.md").write_text(nmd + "\n")
    from qllm.experiments.plots import plot_all

    plot_all(out_dir, rows, records, nrows)
    if progress:
        for task in dict.fromkeys(r["task"] for r in rows):
            print("\n" + headline(rows, task))
        print(f"\nfull table (Δ vs baselines, parameter match, cost): {out_dir / 'summary.md'}"
              f"\nhybrid against each control (seed-paired 95% t intervals, Holm, verdicts): "
              f"{out_dir / 'attribution.md'}\nPareto frontiers: {out_dir / 'pareto.md'}"
              + (f"\nnoise study: {out_dir / 'noise.md'}" if nmd else "")
              + f"\nfigures (PDF, PNG): {out_dir / 'figures'}")
    return SummaryTable(rows)
