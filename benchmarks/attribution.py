"""Attribution benchmark: does the quantum part help? Trains each hybrid of a preset's task grid
with its controls (width- and parameter-matched classical models, the bottleneck map, the circuit
without entanglement) over N paired seeds, then prints the table of hybrid - control with 95% t
intervals, paired t-tests, Holm-corrected p-values and verdicts, and writes it as JSON (config,
seeds, versions, wall time).

    python benchmarks/attribution.py --tasks meaning --seeds 5 --out results/attribution.json

Runs already under ``--work`` are reused (one JSON per run), as in ``qllm bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qllm.experiments.aggregate import load_records, metric_of
from qllm.experiments.bench import task_jobs
from qllm.experiments.stats import compare_to_controls, comparisons_markdown
from qllm.experiments.sweep import run_sweep
from qllm.results import machine, versions, write_json


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick", help="the grid and training settings to use")
    p.add_argument("--tasks", default="meaning", help="comma-separated tasks")
    p.add_argument("--seeds", type=int, default=5, help="paired seeds 0..N-1")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--work", default="results/attribution", help="folder for the runs")
    p.add_argument("--out", default="results/attribution.json")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    jobs = [j for task in args.tasks.split(",")
            for j in task_jobs(args.preset, task, seeds=tuple(range(args.seeds)))]
    sweep = run_sweep(jobs, args.work, workers=args.workers, progress=True)
    ids = {j["run_id"] for j in jobs}
    records = [r for r in load_records(sorted((Path(args.work) / "runs").glob("*.json")))
               if r["job"]["run_id"] in ids]
    rows = compare_to_controls(records, metric_of)
    print(comparisons_markdown(rows))
    data = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "config": vars(args), "seeds": list(range(args.seeds)), "runs": len(jobs),
            "failed": [f["run_id"] for f in sweep["failed"]], "comparisons": rows,
            "wall_time_s": time.perf_counter() - t0, "versions": versions(),
            "machine": machine()}
    write_json(Path(args.out), data)
    return data


if __name__ == "__main__":
    main()
