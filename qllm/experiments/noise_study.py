"""Noise study: a trained hybrid model's test accuracy with exact expectation values, with finite
shots (the native engine's seeded shot sampler), and under a fake IBM device's calibrated noise
(Qiskit Aer), on a fixed subset of the test set (the first ``n_test`` sequences) to keep it fast.

Runs as a sweep job (``qllm.experiments.sweep``), so Aer's threads never share a process with training.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path


def _set_backend(model, name: str, shots: int | None, seed: int) -> None:
    """Every quantum layer on ``name`` with its own sampler seed (layers must not share a
    stream of draws)."""
    from qllm.backends import get_backend

    for i, layer in enumerate(model.quantum_layers()):
        opts = {} if shots is None else {"shots": shots, "seed": seed * 1000 + i}
        layer.backend = get_backend(name, **opts)


def _evaluate(model, task, name, shots, seeds) -> dict:
    from qllm.train import evaluate

    accs, losses, t0 = [], [], time.perf_counter()
    for seed in seeds:
        _set_backend(model, name, shots, seed)
        m = evaluate(model, task, batch_size=128)
        accs.append(m["accuracy"])
        losses.append(m["loss"])
    return {"backend": name, "shots": shots, "accuracy_mean": statistics.fmean(accs),
            "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "accuracies": accs, "loss_mean": statistics.fmean(losses), "repeats": len(seeds),
            "seconds": time.perf_counter() - t0}


def noise_study(model, task, shots_grid: list, repeats: int = 3, devices: list | None = None,
                device_shots: int = 4096) -> list[dict]:
    """Accuracy of ``model`` on ``task``'s test split for each setting.

    Args:
        model: a trained HybridTransformer (its backends are replaced; restore them yourself).
        task: a TaskData (already cut to the test subset you want).
        shots_grid: shots per circuit; None means exact expectation values.
        repeats: sampler seeds per shot count (mean and std over them).
        devices: backend names with device noise, e.g. ``["aer:fake_manila"]`` (one repeat each:
            a fake-device simulation costs far more than the native sampler).
        device_shots: shots per circuit on the devices.
    Returns:
        rows ``{"backend", "shots", "accuracy_mean", "accuracy_std", "accuracies", "loss_mean",
        "repeats", "seconds"}``.
    """
    rows = []
    for shots in shots_grid:
        seeds = [0] if shots is None else list(range(repeats))
        rows.append(_evaluate(model, task, "torch", shots, seeds))
    for dev in devices or []:
        rows.append(_evaluate(model, task, dev, device_shots, [0]))
    _set_backend(model, "torch", None, 0)
    return rows


def run_noise_job(job: dict, out_dir: Path, path: Path) -> dict:
    """Load the source run's checkpoint, run the study on the first ``n_test`` test sequences,
    write ``path``."""
    from qllm.checkpoint import load_checkpoint
    from qllm.config import ModelConfig, TrainConfig
    from qllm.data import load_task
    from qllm.model import HybridTransformer
    from qllm.results import machine, versions, write_json

    state = load_checkpoint(out_dir / "work" / job["source_run"] / "checkpoint.pt")
    model = HybridTransformer(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    tcfg = TrainConfig.from_dict(state["train_config"])
    task = load_task(tcfg.task, **tcfg.task_options)
    n = min(job["n_test"], len(task.x_test))
    task.x_test, task.y_test = task.x_test[:n], task.y_test[:n]
    rows = noise_study(model, task, job["shots"], job["repeats"], job.get("devices"),
                       job.get("device_shots", 4096))
    record = {"job": job, "task": tcfg.task, "n_test": n, "rows": rows, "versions": versions(),
              "machine": machine()}
    write_json(path, record)
    return record
