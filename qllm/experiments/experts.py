"""The ``experts`` preset: mixtures of quantum experts and knowledge distillation.

``qllm bench --preset experts`` (``experts_tiny``: a few steps per run, for tests) trains, per
task and seed:
- a classical teacher, wider than every student (once per task, seed 100);
- a hybrid student (4-qubit quantum FFN) and a classical student of the same parameter count,
  each without and with distillation from the teacher (``TrainConfig.distill``);
- a mixture of 4 quantum experts with top-1 routing (``ffn="quantum_moe"``) and its classical
  control at matched active parameters (``ffn="moe"``).

Output under ``out_dir/<preset>/``: ``runs/*.json`` (one per run, cost report included),
``summary.json``, ``summary.md`` and ``figures/experts.{png,pdf}``. Runs whose JSON exists are
skipped, as in the other presets.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from qllm.config import ModelConfig, MoEConfig, QuantumConfig, TrainConfig
from qllm.errors import ConfigError

PRESETS = ("experts", "experts_tiny")
SEEDS = {"experts": (0, 1, 2), "experts_tiny": (0,)}
TASKS = {  # student dims, teacher dims, epochs per preset (students, teacher)
    "digits": {"dims": {"n_embd": 32, "n_head": 4, "n_layer": 2},
               "teacher": {"n_embd": 64, "n_head": 4, "n_layer": 2},
               "train": {"experts": ({"epochs": 8}, {"epochs": 20}),
                         "experts_tiny": ({"epochs": 1, "max_steps": 3},
                                          {"epochs": 1, "max_steps": 3})}},
    "meaning": {"dims": {"n_embd": 16, "n_head": 2, "n_layer": 2},
                "teacher": {"n_embd": 32, "n_head": 2, "n_layer": 2},
                "train": {"experts": ({"epochs": 8}, {"epochs": 15}),
                          "experts_tiny": ({"epochs": 1, "max_steps": 3},
                                           {"epochs": 1, "max_steps": 3})}},
}
DEFAULT_TASKS = ("digits",)
DISTILL = {"temperature": 2.0, "alpha": 0.5}
TEACHER_SEED = 100


def _check(preset: str, tasks) -> list[str]:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; allowed here: {PRESETS}")
    tasks = list(tasks or DEFAULT_TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"preset {preset!r}: unknown task(s) {unknown}; allowed: {sorted(TASKS)}")
    return tasks


def teacher_job(preset: str, task: str) -> dict:
    from qllm.experiments.baselines import task_fields
    from qllm.experiments.bench import COST

    spec = TASKS[task]
    model = ModelConfig(**spec["teacher"], input_dim=4).override(task_fields(task))
    train = TrainConfig(task=task, seed=TEACHER_SEED, progress=False, **spec["train"][preset][1])
    return {"kind": "train", "run_id": f"{task}-teacher", "preset": preset, "task": task,
            "label": "teacher", "family": "teacher", "seed": TEACHER_SEED,
            "model": model.to_dict(), "train": train.to_dict(), "cost": COST}


def teacher_checkpoint(out: Path, task: str) -> Path:
    """Where the teacher job leaves its checkpoint (``qllm.experiments.jobs``' work folder)."""
    return (out / "work" / f"{task}-teacher" / "checkpoint.pt").resolve()


def student_models(task: str) -> dict[str, ModelConfig]:
    """label -> model: the hybrid, its parameter-matched classical twin, and the two MoEs."""
    from qllm.experiments.baselines import param_matched, task_fields

    fields = task_fields(task)
    base = {**TASKS[task]["dims"], "input_dim": 4}
    q = QuantumConfig(n_qubits=4, n_layers=2)
    hybrid = ModelConfig(**base, ffn="quantum", quantum=q).override(fields)
    moe = MoEConfig(n_experts=4, top_k=1)
    return {"hybrid": hybrid, "classical": param_matched(hybrid)[0],
            "qmoe-4e-top1": ModelConfig(**base, ffn="quantum_moe", quantum=q, moe=moe).override(fields),
            "moe-4e-top1": ModelConfig(**base, ffn="moe", quantum=q, moe=moe).override(fields)}


def student_jobs(preset: str, task: str, out: Path, seeds=None) -> list[dict]:
    from qllm.experiments.bench import COST

    plain = TrainConfig(task=task, progress=False, **TASKS[task]["train"][preset][0])
    taught = plain.override({"distill": {**DISTILL, "teacher": str(teacher_checkpoint(out, task))}})
    jobs = []
    for seed in seeds or SEEDS[preset]:
        for label, model in student_models(task).items():
            distilled = (True, False) if label in ("hybrid", "classical") else (False,)
            for kd in distilled:
                name = f"{label}+kd" if kd else label
                train = (taught if kd else plain).override({"seed": seed})
                jobs.append({"kind": "train", "run_id": f"{task}-{name}-seed{seed}",
                             "preset": preset, "task": task, "label": name,
                             "family": "distilled" if kd else "student", "seed": seed,
                             "model": model.to_dict(), "train": train.to_dict(), "cost": COST})
    return jobs


def preset_jobs(preset: str, tasks=None, out_dir: str | Path = "results") -> list[dict]:
    """Every job of the preset: the teachers first, then the students."""
    tasks = _check(preset, tasks)
    out = Path(out_dir) / preset
    return ([teacher_job(preset, t) for t in tasks]
            + [j for t in tasks for j in student_jobs(preset, t, out)])


def run_preset(name: str, out_dir: str | Path = "results", progress: bool = True,
               executor: str = "local", workers: int | None = None,
               ray_address: str | None = None, tasks=None, **_ignored) -> list[dict]:
    """Train the teachers, then the students (they read the teachers' checkpoints), and write
    the summary; returns its rows."""
    from qllm.experiments.sweep import run_sweep

    tasks = _check(name, tasks)
    out, t0 = Path(out_dir) / name, time.perf_counter()
    teachers = [teacher_job(name, t) for t in tasks]
    students = [j for t in tasks for j in student_jobs(name, t, out)]
    if progress:
        print(f"preset {name}: {len(teachers)} teacher(s), {len(students)} students -> {out}",
              flush=True)
    sweeps = [run_sweep(teachers, out, executor, workers, ray_address, progress)]
    sweeps.append(run_sweep(students, out, executor, workers, ray_address, progress))
    failed = [f for s in sweeps for f in s["failed"]]
    for f in failed:
        print(f"FAILED {f['run_id']}: {f['error']}\n{f.get('traceback', '')}", file=sys.stderr)
    return write_summary(out, teachers + students, time.perf_counter() - t0, failed, progress)


# -- the summary ----------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summary_rows(records: list[dict]) -> list[dict]:
    """One row per (task, label): accuracy mean and std over seeds, parameters, wall time,
    circuits per token, QPU seconds per epoch, and expert utilisation for the MoEs."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["job"]["task"], r["job"]["label"]), []).append(r)
    rows = []
    for (task, label), rs in groups.items():
        acc, acc_std = _mean_std([r["final"]["accuracy"] for r in rs])
        report = rs[0]["cost"]["report"] or {}
        util = [u["share"] for r in rs
                for u in ((r["cost"]["report"] or {}).get("utilisation") or {}).values()]
        rows.append({
            "task": task, "label": label, "seeds": sorted(r["job"]["seed"] for r in rs),
            "accuracy": acc, "accuracy_std": acc_std,
            "test_loss": statistics.fmean(r["final"]["loss"] for r in rs),
            "accuracy_by_seed": {r["job"]["seed"]: r["final"]["accuracy"] for r in rs},
            "params": rs[0]["params"]["total"], "quantum_params": rs[0]["params"]["quantum"],
            "wall_time_s": statistics.fmean(r["wall_time_s"] for r in rs),
            "circuits_per_token": sum(q["circuits_per_token"] for q in report.get("quantum", [])),
            "qpu_seconds_per_epoch": rs[0]["cost"]["ledger"]["qpu_seconds_per_epoch"],
            "expert_share": ([statistics.fmean(col) for col in zip(*util)] if util else None)})
    return rows


def distillation_gains(rows: list[dict]) -> dict:
    """Per task: accuracy with the teacher minus without, for the hybrid and classical students
    (mean over seeds of the paired difference, and its standard deviation)."""
    by = {(r["task"], r["label"]): r for r in rows}
    out = {}
    for task in sorted({r["task"] for r in rows}):
        gains = {}
        for student in ("hybrid", "classical"):
            a, b = by.get((task, f"{student}+kd")), by.get((task, student))
            if a and b:
                diffs = [a["accuracy_by_seed"][s] - b["accuracy_by_seed"][s]
                         for s in a["accuracy_by_seed"] if s in b["accuracy_by_seed"]]
                gains[student] = dict(zip(("mean", "std"), _mean_std(diffs)))
        if len(gains) == 2:
            gains["sentence"] = _sentence(task, gains, len(a["accuracy_by_seed"]))
        out[task] = gains
    return out


def _sentence(task: str, gains: dict, n_seeds: int) -> str:
    """Whether the teacher helped the hybrid student more or less than the classical one."""
    h, c = gains["hybrid"], gains["classical"]
    verb = "more" if h["mean"] > c["mean"] else "less" if h["mean"] < c["mean"] else "as much as"
    hurt = (" (it hurt both on average)" if h["mean"] < 0 and c["mean"] < 0 else "")
    noise = ("; both changes are within one standard deviation of the seeds"
             if abs(h["mean"]) <= h["std"] and abs(c["mean"]) <= c["std"] else "")
    return (f"On {task}, the teacher helped the hybrid student {verb} than the classical one"
            f"{hurt}: {100 * h['mean']:+.1f} ± {100 * h['std']:.1f} against {100 * c['mean']:+.1f} "
            f"± {100 * c['std']:.1f} accuracy points (paired over {n_seeds} seeds){noise}.")


def markdown(rows: list[dict], gains: dict) -> str:
    lines = ["| task | model | test accuracy | test loss | params (in circuits) | circuits/token | "
             "QPU s/epoch (ibm_heron, param.-shift) | expert shares | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = " / ".join(f"{100 * s:.0f}%" for s in r["expert_share"]) if r["expert_share"] else ""
        lines.append(f"| {r['task']} | {r['label']} | {100 * r['accuracy']:.1f} ± "
                     f"{100 * r['accuracy_std']:.1f}% | {r['test_loss']:.3f} | "
                     f"{r['params']:,} ({r['quantum_params']}) | "
                     f"{r['circuits_per_token']:.2f} | {r['qpu_seconds_per_epoch']:.3g} | {share} | "
                     f"{r['wall_time_s']:.1f} |")
    lines += [""] + [g["sentence"] for g in gains.values() if "sentence" in g]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, jobs: list[dict], seconds: float, failed: list, progress: bool):
    from qllm.experiments.aggregate import load_records
    from qllm.experiments.sweep import job_path
    from qllm.results import machine, versions, write_json

    paths = [job_path(out, j) for j in jobs]
    rows = summary_rows(load_records([p for p in paths if p.exists()]))
    gains = distillation_gains(rows)
    text = markdown(rows, gains)
    (out / "summary.md").write_text(text)
    write_json(out / "summary.json", {
        "preset": out.name, "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "wall_time_s": seconds, "distill": DISTILL, "rows": rows, "distillation_gains": gains,
        "failed": [{k: f[k] for k in ("run_id", "error")} for f in failed],
        "versions": versions(), "machine": machine()})
    _plot(rows, out / "figures")
    if progress:
        print(text, flush=True)
    return rows


def _plot(rows: list[dict], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = [f"{r['task']}\n{r['label']}" for r in rows]
    ax.bar(range(len(rows)), [100 * r["accuracy"] for r in rows],
           yerr=[100 * r["accuracy_std"] for r in rows], capsize=3,
           color=["C1" if r["quantum_params"] else "C0" for r in rows])
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    low = min(100 * (r["accuracy"] - r["accuracy_std"]) for r in rows)
    ax.set_ylim(max(0.0, low - 5), 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("experts preset: orange = quantum circuits inside")
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(folder / f"experts.{ext}", dpi=150)
    plt.close(fig)
