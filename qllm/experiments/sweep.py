"""Sweep runners: run a list of jobs, one JSON per job, skipping jobs whose JSON already exists
(so a killed sweep resumes where it stopped, and a run killed mid-training continues from its
last epoch checkpoint).

A job is a plain JSON-able dict ``{"kind": "train" | "noise", "run_id": ..., ...}``; workers
receive only that dict and the output folder, so the same jobs run in a local process pool
(default: one worker per core, each with ``torch.set_num_threads(1)`` to avoid
oversubscription) or on a Ray cluster (``executor="ray"``; address from ``ray_address`` or
``RAY_ADDRESS``; ``pip install qllm[sweep]``). Follow-ups (``run_sweep(..., followups=...)``) are
jobs made once the runs they need have finished; they start next, in the same workers.

>>> run_sweep([], "results/empty")                      # doctest: +SKIP
{'ran': [], 'skipped': [], 'failed': []}
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from qllm.errors import ConfigError
from qllm.validate import is_int

EXECUTORS = ("local", "ray", "serial")


def job_path(out_dir: str | Path, job: dict) -> Path:
    """Where a job's JSON goes: ``out_dir/runs/<run_id>.json`` (noise jobs: ``out_dir/noise/``)."""
    folder = "noise" if job["kind"] == "noise" else "runs"
    return Path(out_dir) / folder / f"{job['run_id']}.json"


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def execute(job: dict, out_dir: str) -> dict:
    """Run one job in this process (skipped if its JSON exists). Returns
    ``{"run_id", "status": "ran" | "skipped" | "failed", "seconds", "record"?, "error"?}``; the
    record comes back so a driver on another machine than a Ray worker can write it too."""
    path = job_path(out_dir, job)
    if path.exists():
        return {"run_id": job["run_id"], "status": "skipped", "seconds": 0.0}
    t0 = time.perf_counter()
    try:
        if job["kind"] == "train":
            from qllm.experiments.jobs import run_train_job

            record = run_train_job(job, Path(out_dir), path)
        elif job["kind"] == "noise":
            from qllm.experiments.noise_study import run_noise_job

            record = run_noise_job(job, Path(out_dir), path)
        else:
            raise ConfigError(f"job kind {job['kind']!r} is not one of ('train', 'noise')")
    except Exception as e:  # noqa: BLE001 - one failed run must not sink the sweep; reported
        return {"run_id": job["run_id"], "status": "failed", "seconds": time.perf_counter() - t0,
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    return {"run_id": job["run_id"], "status": "ran", "seconds": time.perf_counter() - t0,
            "record": record}


def _worker(job: dict, out_dir: str) -> dict:
    _init_worker()
    return execute(job, out_dir)


class _Progress:
    """A ``tqdm.auto`` bar over a sweep's runs (ETA from the runs done so far); each finished
    run names itself in the bar, a failed one also gets a line."""

    def __init__(self, n: int, enabled: bool, desc: str = "runs"):
        self.enabled, self.desc, self.bar = enabled, desc, None
        self.grow(n)

    def grow(self, n: int, desc: str | None = None) -> None:
        """``n`` more runs to do (a follow-up's); the bar starts with the first run."""
        if self.bar is None and n:
            from tqdm.auto import tqdm

            self.desc = desc or self.desc

            self.bar = tqdm(total=n, desc=self.desc, unit="run", disable=not self.enabled,
                            dynamic_ncols=True)
        elif n:
            self.bar.total += n
            self.bar.refresh()

    def __call__(self, done: dict) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(f"last: {done['run_id']} ({done['seconds']:.0f} s)")
        if done["status"] == "failed" and self.enabled:
            self.bar.write(f"failed {done['run_id']}: {done['error']}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Schedule:
    """The jobs still to start, in order, and the follow-ups that join them (at the front: they
    start next) once every run they wait for has finished."""

    def __init__(self, todo: list[dict], followups, known_ids: set, skipped: set):
        from collections import deque

        self.pending = deque(todo)
        self.finished = set(skipped)
        # a follow-up waits only for runs of this sweep (anything else would never finish)
        self.followups = [[set(after) & known_ids, make] for after, make in followups or ()]
        self.known = set(known_ids)
        self.jobs = {j["run_id"]: j for j in todo}

    def release(self, out_dir: str, summary: dict, report) -> None:
        """Start every follow-up whose runs have all finished: make its jobs, skip those whose
        JSON exists, queue the rest first."""
        ready = [f for f in self.followups if f[0] <= self.finished]
        self.followups = [f for f in self.followups if f not in ready]
        for _, make in ready:
            new = []
            for job in make():
                if job["run_id"] in self.known:
                    raise ConfigError(f"run_id must be unique within a sweep: a follow-up "
                                      f"repeats {job['run_id']!r}")
                self.known.add(job["run_id"])
                if job_path(out_dir, job).exists():
                    summary["skipped"].append(job["run_id"])
                    self.finished.add(job["run_id"])
                else:
                    new.append(job)
                    self.jobs[job["run_id"]] = job
            self.pending.extendleft(reversed(new))
            report.grow(len(new), "noise study" if all(j["kind"] == "noise" for j in new)
                        else None)

    def done(self, result: dict) -> None:
        self.finished.add(result["run_id"])


def run_sweep(jobs: list[dict], out_dir: str | Path, executor: str = "local",
              workers: int | None = None, ray_address: str | None = None,
              progress: bool = True, followups: list | None = None) -> dict:
    """Run ``jobs``, writing one JSON per job under ``out_dir``; jobs whose JSON exists are
    skipped without starting a worker.

    Args:
        jobs: job dicts (see the module docstring); ``run_id`` must be unique.
        out_dir: the preset's results folder.
        executor: "local" (process pool), "ray", or "serial" (this process; for debugging).
        workers: pool size (default: every core, ``os.cpu_count()``); ignored by Ray.
        ray_address: a Ray cluster address; default ``RAY_ADDRESS``, else a local Ray instance.
        progress: show a ``tqdm.auto`` progress bar with an ETA (a widget in notebooks).
        followups: ``[(run_ids, make_jobs)]``: once every run of ``run_ids`` in this sweep has
            finished (ran, skipped or failed), ``make_jobs()`` is called here and the jobs it
            returns start next, in the same workers (the noise study starts as soon as the
            runs it picks from are done, while the other runs train; no second pool).
    Returns:
        ``{"ran": [run_id...], "skipped": [...], "failed": [{"run_id", "error", ...}]}``.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"executor={executor!r} is not one of {EXECUTORS}")
    if workers is not None and (not is_int(workers)
                                or workers < 1):
        raise ConfigError(f"workers must be an int >= 1, got {workers!r}")
    ids = [j["run_id"] for j in jobs]
    if len(set(ids)) != len(ids):
        raise ConfigError("run_id must be unique within a sweep")
    out_dir = str(out_dir)
    summary = {"ran": [], "skipped": [], "failed": []}
    todo = []
    for job in jobs:
        if job_path(out_dir, job).exists():
            summary["skipped"].append(job["run_id"])
        else:
            todo.append(job)
    if progress and summary["skipped"]:
        print(f"{len(summary['skipped'])} of {len(jobs)} runs already done (JSON exists): "
              "skipped", flush=True)
    report = _Progress(len(todo), progress, desc="noise study" if todo and all(
        j["kind"] == "noise" for j in todo) else "training runs")
    schedule = _Schedule(todo, followups, set(ids), set(summary["skipped"]))

    def finish(r: dict) -> None:
        _keep(r, schedule.jobs[r["run_id"]], out_dir, summary)
        schedule.done(r)
        report(r)
        schedule.release(out_dir, summary, report)

    try:
        schedule.release(out_dir, summary, report)
        if executor == "serial" or not schedule.pending:
            while schedule.pending:
                finish(execute(schedule.pending.popleft(), out_dir))
        elif executor == "local":
            _run_local(schedule, out_dir, workers or os.cpu_count() or 1, finish)
        else:
            _run_ray(schedule, out_dir, ray_address, finish)
    finally:
        report.close()
    return summary


def _keep(r: dict, job: dict, out_dir: str, summary: dict) -> None:
    """File one finished job's result: its JSON (written here when a Ray worker on another node
    could not; follow-ups may read it) and its line in the summary."""
    path = job_path(out_dir, job)
    if r.get("record") is not None and not path.exists():  # a Ray worker on another node
        from qllm.results import write_json

        write_json(path, r["record"])
    if r["status"] == "failed":
        summary["failed"].append(r)
    else:
        summary[r["status"]].append(r["run_id"])


def _run_local(schedule: _Schedule, out_dir: str, workers: int, finish) -> None:
    """A process pool that holds at most one job per worker, so a follow-up queued at the front
    starts as soon as a worker frees up."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn, not fork: a forked torch/OpenMP runtime can deadlock in the child
    ctx = mp.get_context("spawn")
    # follow-ups may bring any number of jobs: then every worker may be needed
    size = workers if schedule.followups else min(workers, len(schedule.pending))
    with ProcessPoolExecutor(max_workers=size, mp_context=ctx, initializer=_init_worker) as pool:
        running = set()
        while schedule.pending or running:
            while schedule.pending and len(running) < size:
                running.add(pool.submit(execute, schedule.pending.popleft(), out_dir))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                finish(fut.result())


def _run_ray(schedule: _Schedule, out_dir: str, address: str | None, finish) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor='ray' needs Ray: pip install 'qllm[sweep]' (or pip install "
                          "ray)") from None
    address = address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        remote = ray.remote(num_cpus=1)(_worker)
        # a cluster takes every job at once (it queues them itself); follow-ups join as released
        pending = []
        while schedule.pending or pending:
            while schedule.pending:
                pending.append(remote.remote(schedule.pending.popleft(), out_dir))
            done, pending = ray.wait(pending, num_returns=1)
            finish(ray.get(done[0]))
    finally:
        if started:
            ray.shutdown()
