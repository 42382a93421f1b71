"""benchmarks/quick_profile.py: the CPU time of a preset's runs split into phases that add up,
and the outputs' time split into tables and figures."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "quick_profile.py"


def _script():
    spec = importlib.util.spec_from_file_location("quick_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_profile_splits_the_cpu_time_of_the_preset_runs(tmp_path):
    from qllm.experiments.bench import preset_jobs
    from qllm.experiments.sweep import run_sweep

    jobs = [j for j in preset_jobs("tiny", ["meaning"]) if j["seed"] == 0]
    run_sweep(jobs, tmp_path / "tiny", executor="serial", progress=False)
    data = _script().main(["--preset", "tiny", "--tasks", "meaning", "--seeds", "0",
                           "--results", str(tmp_path / "tiny"), "--out", str(tmp_path / "p.json")])
    runs = data["runs"]
    assert runs["runs"] == len(jobs) == 5
    phases = runs["phases_cpu_s"]
    assert sum(phases.values()) == pytest.approx(runs["cpu_s"])
    assert sum(runs["per_task_cpu_s"].values()) == pytest.approx(runs["cpu_s"])
    for phase in ("optimisation steps", "evaluation (validation curve, test)",
                  "epoch checkpoints", "cost report"):
        assert phases[phase] > 0
    out = data["outputs"]
    assert out["figures_cpu_s"] > 0 and out["tables_cpu_s"] > 0
    assert out["cpu_s"] == pytest.approx(out["figures_cpu_s"] + out["tables_cpu_s"])
    assert json.loads((tmp_path / "p.json").read_text())["runs"]["runs"] == 5
