"""Where the seconds of ``qllm bench --preset quick`` go: train a subset of its runs (one seed of
each model of the given tasks) serially in this process on one thread, and split each run's CPU
time into phases (optimisation steps, evaluations, epoch checkpoints, the cost report, optimizer
set-up, data); then, given a finished preset folder, time the tables and the figures that
``write_outputs`` draws from it. Prints a table and writes JSON.

    python benchmarks/quick_profile.py --tasks meaning --seeds 0 --results results/quick

CPU seconds (``time.process_time``) rather than wall time: the machine may be shared, and CPU
time is what two quiet cores divide. Interpose-style timers wrap the ``qllm.train`` functions, so
the runs are the preset's own jobs, unchanged.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from pathlib import Path

PHASES = {  # qllm.train name -> phase
    "_step": "optimisation steps", "evaluate": "evaluation (validation curve, test)",
    "save_checkpoint": "epoch checkpoints", "_run_cost": "cost report",
    "_optimizer": "optimizer set-up", "load_task": "data", "with_validation": "data",
    "HybridTransformer": "model build",
}


def _timed(module, name: str, phase: str, acc: dict, depth: list) -> None:
    """Wrap ``module.name`` so its outermost calls add their CPU seconds to ``acc[phase]``."""
    f = getattr(module, name)

    @functools.wraps(f)
    def wrapper(*a, **k):
        if depth[0]:
            return f(*a, **k)
        depth[0] += 1
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            acc[phase] = acc.get(phase, 0.0) + time.process_time() - t
            depth[0] -= 1

    setattr(module, name, wrapper)


def profile_runs(tasks: list[str], seeds: list[int], preset: str = "quick") -> dict:
    """Run the preset's jobs of ``tasks`` x ``seeds`` here; CPU seconds per phase and task."""
    import torch

    import qllm.train as train
    from qllm.experiments.bench import preset_jobs
    from qllm.experiments.sweep import execute

    torch.set_num_threads(1)  # as in a sweep worker
    acc, depth = {}, [0]
    for name, phase in PHASES.items():
        _timed(train, name, phase, acc, depth)
    jobs = [j for j in preset_jobs(preset, tasks) if j["seed"] in seeds]
    per_task, out = {}, Path(tempfile.mkdtemp(prefix="quick_profile_"))
    try:
        for job in jobs:
            t = time.process_time()
            status = execute(job, str(out))["status"]
            if status != "ran":
                raise RuntimeError(f"{job['run_id']}: {status}")
            per_task[job["task"]] = per_task.get(job["task"], 0.0) + time.process_time() - t
    finally:
        shutil.rmtree(out, ignore_errors=True)
    total = sum(per_task.values())
    return {"runs": len(jobs), "cpu_s": total, "per_task_cpu_s": per_task,
            "phases_cpu_s": {**acc, "other (locks, ledger, JSON, lazy imports)":
                             total - sum(acc.values())}}


def profile_outputs(results: Path) -> dict:
    """CPU seconds of the tables and of the figures ``write_outputs`` makes from ``results``."""
    import qllm.experiments.aggregate as aggregate
    import qllm.experiments.plots as plots

    copy = Path(tempfile.mkdtemp(prefix="quick_outputs_"))
    try:
        for sub in ("runs", "noise"):
            if (results / sub).exists():
                shutil.copytree(results / sub, copy / sub)
        acc, depth = {}, [0]
        _timed(plots, "plot_all", "figures (PDF + PNG)", acc, depth)
        t = time.process_time()
        aggregate.write_outputs(copy, progress=False)
        total = time.process_time() - t
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return {"cpu_s": total, "figures_cpu_s": acc["figures (PDF + PNG)"],
            "tables_cpu_s": total - acc["figures (PDF + PNG)"]}


def main(argv=None) -> dict:
    from qllm.results import machine, versions, write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick", help="the preset whose runs to profile")
    p.add_argument("--tasks", default="meaning", help="comma-separated tasks of the preset")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--results", help="a finished preset folder (e.g. results/quick) to time "
                                     "the tables and figures on")
    p.add_argument("--out", default="results/quick_profile.json")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    runs = profile_runs(args.tasks.split(","), [int(s) for s in args.seeds.split(",")],
                        args.preset)
    print(f"{runs['runs']} runs ({args.tasks}; seeds {args.seeds}), {runs['cpu_s']:.1f} CPU s")
    print("| phase | CPU s | share |\n|---|---|---|")
    for phase, s in sorted(runs["phases_cpu_s"].items(), key=lambda kv: -kv[1]):
        print(f"| {phase} | {s:.2f} | {s / runs['cpu_s']:.0%} |")
    data = {"config": vars(args), "runs": runs, "versions": versions(), "machine": machine()}
    if args.results:
        outputs = data["outputs"] = profile_outputs(Path(args.results))
        print(f"\n| outputs of {args.results} | CPU s |\n|---|---|\n"
              f"| tables (CSV, markdown, statistics, Pareto) | {outputs['tables_cpu_s']:.2f} |\n"
              f"| figures (PDF + PNG) | {outputs['figures_cpu_s']:.2f} |")
    data["wall_time_s"] = time.perf_counter() - t0
    write_json(Path(args.out), data)
    print(f"\nwrote {args.out}")
    return data


if __name__ == "__main__":
    main()
