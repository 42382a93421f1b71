"""The compression sweep (``qllm bench --preset compression``): train the quick benchmark's
``digits`` hybrid (4-qubit quantum FFN, seed 0, the quick preset's settings), then compress it
over a grid of pruning tolerances and angle bit widths (post-training, and quantization-aware
fine-tuning at the smallest widths) and record, per point, accuracy, gates and depth transpiled
for ``ibm_torino``, circuits per training step and projected QPU seconds (``ibm_heron``).

Output under ``out_dir/compression/``: ``sweep.json`` (config, seed, versions, every point),
``sweep.md`` and ``figures/compression.{pdf,png}`` (accuracy against transpiled two-qubit gates
and against QPU seconds per training epoch).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

# (tol, bits, qat_steps): a pruning-only line, a quantization-only line, combinations, and
# quantization-aware fine-tuning where post-training rounding hurts most.
GRID = ([(t, None, 0) for t in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, math.pi)]
        + [(None, b, 0) for b in (8, 6, 4, 3, 2, 1)]
        + [(0.2, 4, 0), (0.4, 3, 0)]
        + [(None, b, 100) for b in (3, 2, 1)] + [(0.4, 3, 100)])
SMOKE_GRID = [(0.2, None, 0), (None, 3, 0), (None, 2, 4)]
REPORT = {"target": "ibm_torino", "shots": 1024, "profile": "ibm_heron"}


def digits_hybrid_job(preset: str = "quick", seed: int = 0) -> dict:
    """The quick benchmark's digits hybrid job of one seed (model and train configs)."""
    from qllm.experiments.bench import task_jobs

    jobs = [j for j in task_jobs(preset, "digits", seeds=(seed,)) if j["family"] == "hybrid"]
    return jobs[0]


def trained_hybrid(out: Path, preset: str = "quick", seed: int = 0, progress: bool = True):
    """Train (or reuse) the digits hybrid; returns its checkpoint path."""
    from qllm.config import ModelConfig, TrainConfig
    from qllm.train import train

    job = digits_hybrid_job(preset, seed)
    work = out / "work" / job["run_id"]
    ckpt = work / "checkpoint.pt"
    if not (work / "results.json").exists():
        tcfg = TrainConfig.from_dict(job["train"]).override({"progress": progress})
        train(ModelConfig.from_dict(job["model"]), tcfg, out_dir=work)
    return ckpt, job


def sweep(checkpoint: Path, grid: list, progress: bool = True, limit: int | None = None) -> dict:
    """Compress the checkpoint at every grid point; returns the original row and the points."""
    from qllm.compress import compress_model, layer_rows, load_compressed, model_row
    from qllm.data import load_task

    model, tcfg = load_compressed(checkpoint)
    task = load_task(tcfg.task, **tcfg.task_options)
    if limit:
        task.x_test, task.y_test = task.x_test[:limit], task.y_test[:limit]
    opts = {**REPORT, "batch_size": tcfg.batch_size, "epochs": tcfg.epochs}
    original = model_row(model, task, **opts)
    points = []
    for tol, bits, qat in tqdm(grid, desc="compression sweep", disable=not progress):
        t0 = time.perf_counter()
        small, results = compress_model(model, tol=tol, bits=bits, qat_steps=qat, task=task,
                                        seed=0, batch_size=tcfg.batch_size)
        row = model_row(small, task, **opts)
        points.append({"tol": tol, "bits": bits, "qat_steps": qat, **row,
                       "error_bound": max(r.error_bound for r in results.values()),
                       "layers": layer_rows(results), "seconds": time.perf_counter() - t0})
    return {"original": original, "points": points, "report": opts,
            "train_config": tcfg.to_dict()}


def label(p: dict) -> str:
    parts = []
    if p["tol"] is not None:
        parts.append(f"tol {p['tol']:.2g}")
    if p["bits"] is not None:
        parts.append(f"{p['bits']} bits" + (f" + QAT {p['qat_steps']}" if p["qat_steps"] else ""))
    return ", ".join(parts) or "merge only"


def table(data: dict) -> str:
    o = data["original"]
    lines = ["| compression | test acc. | weights | 1q/2q on ibm_torino | depth (2q) | "
             "circuits / train step | QPU s / epoch | bound on |Δ<Z>| |",
             "|---|---|---|---|---|---|---|---|"]

    def row(name, r, bound="-"):
        lines.append(f"| {name} | {100 * r['accuracy']:.2f}% | {r['weights']} | "
                     f"{r['transpiled_n_1q']}/{r['transpiled_n_2q']} | {r['transpiled_depth']} "
                     f"({r['transpiled_depth_2q']}) | {r['train_step_executions']:,.0f} | "
                     f"{r['train_epoch_qpu_s']:,.0f} | {bound} |")

    row("none (trained)", o)
    for p in data["points"]:
        bound = "-" if p["qat_steps"] else f"{p['error_bound']:.3g}"
        row(label(p), p, bound)
    return "\n".join(lines)


def short_label(p: dict) -> str:
    """``t0.4`` (tolerance), ``3b`` (bits), ``+Q`` (fine-tuned): for crowded figures."""
    parts = [f"t{p['tol']:.2g}"] if p["tol"] is not None else []
    if p["bits"] is not None:
        parts.append(f"{p['bits']}b" + ("+Q" if p["qat_steps"] else ""))
    return " ".join(parts) or "merge"


AXES = (("transpiled_n_2q", "two-qubit gates on ibm_torino"),
        ("transpiled_n_1q", "one-qubit gates on ibm_torino"),
        ("train_epoch_qpu_s", "QPU seconds per training epoch (ibm_heron)"))
STYLES = {"prune": ("o", "tab:blue"), "quantize": ("s", "tab:orange"),
          "prune + quantize": ("D", "tab:green"), "quantize + QAT": ("^", "tab:red")}


def kind(p: dict) -> str:
    if p["qat_steps"]:
        return "quantize + QAT"
    if p["tol"] is not None and p["bits"]:
        return "prune + quantize"
    return "prune" if p["tol"] is not None else "quantize"


def plot(data: dict, path: Path) -> list[Path]:
    """Accuracy against transpiled 2- and 1-qubit gates and against QPU seconds per epoch
    (the circuits of both quantum layers together)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    o = data["original"]
    for ax, (key, name) in zip(axes, AXES):
        for p in data["points"]:
            m, c = STYLES[kind(p)]
            ax.scatter(p[key], 100 * p["accuracy"], marker=m, color=c, s=26, alpha=0.8)
            ax.annotate(short_label(p), (p[key], 100 * p["accuracy"]), fontsize=5.5,
                        xytext=(3, 2), textcoords="offset points")
        ax.scatter(o[key], 100 * o["accuracy"], marker="*", color="black", s=90, zorder=3)
        ax.set_xlabel(name)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker=m, color=c, ls="", label=k) for k, (m, c) in STYLES.items()]
    handles.append(plt.Line2D([], [], marker="*", color="black", ls="", label="trained"))
    axes[2].legend(handles=handles, fontsize=7, loc="lower right")
    fig.suptitle("digits hybrid (quantum FFN, 4 qubits, seed 0): accuracy against what the "
                 "compressed circuits cost (t = tolerance, b = bits, +Q = fine-tuned)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".pdf"), path.with_suffix(".png")]
    for p in out:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return out


def run(out_dir: str | Path = "results", progress: bool = True, smoke: bool = False) -> list:
    """Train the hybrid, sweep, write JSON, markdown and figures; returns the points."""
    from qllm.results import machine, versions, write_json

    torch.set_num_threads(1)  # tiny models: one thread is faster (as the sweep workers)
    t0 = time.perf_counter()
    out = Path(out_dir) / "compression"
    ckpt, job = trained_hybrid(out, "tiny" if smoke else "quick", 0, progress)
    data = sweep(ckpt, SMOKE_GRID if smoke else GRID, progress, limit=32 if smoke else None)
    data.update({"job": {k: v for k, v in job.items() if k not in ("train",)}, "seed": 0,
                 "versions": versions(), "machine": machine(),
                 "wall_time_s": time.perf_counter() - t0})
    write_json(out / "sweep.json", data)
    text = table(data)
    (out / "sweep.md").write_text(text + "\n")
    plot(data, out / "figures" / "compression")
    if progress:
        print(text)
    return data["points"]
