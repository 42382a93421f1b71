"""The benchmark machinery on the ``tiny`` preset: a sweep that is killed resumes without redoing
finished runs; aggregation is a pure function of the run JSON files; the table says whether each
parameter-matched baseline is within 10%; the noise study agrees with exact evaluation; Ray runs
the same jobs (skipped when ray is not installed)."""

import json
import math
import shutil
import statistics
import subprocess
import sys
import time

import pytest

from qllm.errors import ConfigError
from qllm.experiments.aggregate import aggregate, load_records, to_csv, to_markdown, write_outputs
from qllm.experiments.bench import noise_jobs, preset_jobs
from qllm.experiments.sweep import job_path, run_sweep

KILL_SCRIPT = """
import json, sys
from qllm.experiments.sweep import run_sweep
jobs = json.load(open(sys.argv[1]))
run_sweep(jobs, sys.argv[2], executor="serial", progress=False)
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Start the tiny ``meaning`` sweep in a subprocess, kill it once the first run's JSON
    exists, then resume it in a local process pool."""
    out = tmp_path_factory.mktemp("bench") / "tiny"
    jobs = preset_jobs("tiny", tasks=["meaning"])
    spec = out.parent / "jobs.json"
    spec.write_text(json.dumps(jobs))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(spec), str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "runs").glob("*.json")):
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    assert 1 <= len(done) < len(jobs), "the kill must land mid-sweep"
    summary = run_sweep(jobs, out, executor="local", workers=2, progress=False)
    return {"out": out, "jobs": jobs, "done_before_kill": done, "summary": summary}


def test_killed_sweep_resumes_without_redoing_finished_runs(sweep):
    jobs, done, summary = sweep["jobs"], sweep["done_before_kill"], sweep["summary"]
    finished = {f"{n[:-5]}" for n in done}
    assert summary["failed"] == []
    assert set(summary["skipped"]) == finished
    assert set(summary["ran"]) == {j["run_id"] for j in jobs} - finished
    for name, data in done.items():  # finished runs were not rewritten
        assert (sweep["out"] / "runs" / name).read_bytes() == data
    assert all(job_path(sweep["out"], j).exists() for j in jobs)
    again = run_sweep(jobs, sweep["out"], executor="local", progress=False)
    assert again == {"ran": [], "skipped": [j["run_id"] for j in jobs], "failed": []}


def test_aggregation_is_a_pure_function_of_the_json_files(sweep, tmp_path):
    paths = sorted((sweep["out"] / "runs").glob("*.json"))
    rows = aggregate(load_records(paths))
    assert to_csv(aggregate(load_records(paths[::-1]))) == to_csv(rows)
    # the same files elsewhere give the same bytes (nothing read from checkpoints or the clock)
    copy = tmp_path / "copy"
    (copy / "runs").mkdir(parents=True)
    for p in paths:
        shutil.copy(p, copy / "runs" / p.name)
    write_outputs(copy, progress=False)
    write_outputs(sweep["out"], progress=False)
    for name in ("summary.csv", "summary.md"):
        assert (copy / name).read_bytes() == (sweep["out"] / name).read_bytes()
    assert {p.name for p in (copy / "figures").glob("*.png")} >= {
        "accuracy_vs_params.png", "accuracy_vs_qpu_seconds.png", "learning_curves.png"}
    # each row's numbers are the seeds' values from the JSON files
    records = [json.loads(p.read_text()) for p in paths]
    for row in rows:
        accs = [r["final"]["accuracy"] for r in records if r["job"]["label"] == row["label"]]
        assert row["n_seeds"] == len(accs) == 2
        assert row["metric_mean"] == pytest.approx(statistics.fmean(accs))
        assert row["metric_std"] == pytest.approx(statistics.stdev(accs))


def test_paired_differences_and_parameter_match_column(sweep):
    records = load_records(sorted((sweep["out"] / "runs").glob("*.json")))
    rows = {r["label"]: r for r in aggregate(records)}
    hybrid = rows["qffn-he-4q"]
    by = {(r["job"]["label"], r["job"]["seed"]): r["final"]["accuracy"] for r in records}
    diffs = [by[("qffn-he-4q", s)] - by[("classical-width", s)] for s in (0, 1)]
    assert hybrid["d_width_mean"] == pytest.approx(statistics.fmean(diffs))
    assert hybrid["d_width_std"] == pytest.approx(statistics.stdev(diffs))
    base = rows[hybrid["param_ref"]]
    assert base["family"] == "classical-params"
    assert abs(base["params"] - hybrid["params"]) <= 0.10 * hybrid["params"]
    assert base["param_rel_diff"] == pytest.approx((base["params"] - hybrid["params"])
                                                   / hybrid["params"])
    md = to_markdown(list(rows.values()))
    assert md.count("✓ within 10%") == 2 and "NOT" not in md
    # the ledger: the hybrid uses qubits and QPU time, the classical models none
    assert hybrid["qubits"] == 4 and hybrid["qpu_seconds_per_epoch"] > 0
    assert hybrid["two_qubit_gates"] >= hybrid["quantum_layers"] * 3  # a CNOT ring per layer
    assert rows["classical-width"]["qubits"] == 0
    assert math.isnan(rows["classical-width"]["d_width_mean"])


def test_noise_study_matches_exact_evaluation(sweep):
    from qllm.checkpoint import load_checkpoint
    from qllm.config import ModelConfig
    from qllm.data import load_task
    from qllm.experiments.noise_study import noise_study
    from qllm.model import HybridTransformer
    from qllm.train import evaluate

    state = load_checkpoint(sweep["out"] / "work" / "meaning-qffn-he-4q-seed0" / "checkpoint.pt")
    model = HybridTransformer(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    task = load_task("meaning")
    exact = evaluate(model, task)
    rows = noise_study(model, task, [None, 200_000, 64], repeats=2)
    assert rows[0]["shots"] is None and rows[0]["accuracy_mean"] == exact["accuracy"]
    # many shots: the sampled loss approaches the exact loss; few shots: it moves away
    assert rows[1]["loss_mean"] == pytest.approx(exact["loss"], abs=2e-3)
    assert abs(rows[2]["loss_mean"] - exact["loss"]) > abs(rows[1]["loss_mean"] - exact["loss"])
    assert rows[2]["repeats"] == 2 and len(rows[2]["accuracies"]) == 2
    # the backends are exact again afterwards
    assert evaluate(model, task)["loss"] == pytest.approx(exact["loss"], abs=1e-6)


def test_noise_job_picks_seed_zero_of_the_best_hybrid(sweep):
    out = sweep["out"]
    assert noise_jobs("tiny", out, task="digits") == []  # no digits runs in this sweep
    (job,) = noise_jobs("tiny", out, task="meaning")
    assert job["source_run"] == "meaning-qffn-he-4q-seed0" and job["kind"] == "noise"


def test_bad_names_raise_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="quick"):
        preset_jobs("huge")
    with pytest.raises(ConfigError, match="digits"):
        preset_jobs("tiny", tasks=["imagenet"])
    with pytest.raises(ConfigError, match="ray"):
        run_sweep([], tmp_path, executor="slurm")
    with pytest.raises(ConfigError, match="workers"):
        run_sweep([], tmp_path, workers=0)


def test_preset_grids_cover_the_issue():
    quick = preset_jobs("quick")
    for task in ("digits", "meaning", "sort", "stdlib_text"):
        fams = {(j["family"], j["seed"]) for j in quick if j["task"] == task}
        assert {f for f, _ in fams} == {"classical-width", "classical-params", "hybrid",
                                        "bottleneck", "no_entanglement"}
        assert {s for _, s in fams} == {0, 1, 2, 3}
    full = preset_jobs("full", tasks=["digits"])
    variants = {tuple(sorted(j["variant"].items())) for j in full if j["family"] == "hybrid"}
    assert {dict(v)["ansatz"] for v in variants} >= {"hardware_efficient", "strongly_entangling",
                                                     "sim14"}
    assert {dict(v)["n_qubits"] for v in variants} == {4, 6, 8}
    assert {dict(v)["blocks"] for v in variants} == {"all", "last"}
    assert {(dict(v)["attn"], dict(v)["ffn"]) for v in variants} == {
        ("classical", "quantum"), ("quantum", "classical"), ("quantum", "quantum")}
    assert {j["seed"] for j in full} == {0, 1, 2, 3, 4}


def test_ray_executor_runs_the_same_jobs(tmp_path):
    import ray  # in the dev extra: this test must run, not skip
    jobs = [j for j in preset_jobs("tiny", tasks=["meaning"]) if j["seed"] == 0][:2]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_sweep(jobs, tmp_path, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert summary["failed"] == [] and summary["skipped"] == []
    assert sorted(summary["ran"]) == sorted(j["run_id"] for j in jobs)
    for j in jobs:
        rec = json.loads(job_path(tmp_path, j).read_text())
        assert rec["job"]["run_id"] == j["run_id"] and rec["steps"] == j["train"]["max_steps"]


def test_every_hybrid_has_its_controls_with_the_same_seeds():
    from qllm.config import ModelConfig
    from qllm.experiments.baselines import param_count

    quick = preset_jobs("quick")
    by_label = {}
    for j in quick:
        by_label.setdefault((j["task"], j["label"]), []).append(j)
    hybrids = [(t, lab) for (t, lab), js in by_label.items() if js[0]["family"] == "hybrid"]
    assert len(hybrids) == 3 + 8  # one per task, the meaning grid (last-block only included)
    for task, label in hybrids:
        job = by_label[(task, label)][0]
        assert set(job["controls"]) == {"bottleneck", "no_entanglement"}
        n_hybrid = param_count(ModelConfig.from_dict(job["model"]))
        for name, clabel in job["controls"].items():
            cjobs = by_label[(task, clabel)]
            assert {c["seed"] for c in cjobs} == {j["seed"] for j in by_label[(task, label)]}
            assert cjobs[0]["family"] == name and cjobs[0]["control_of"] == label
            assert cjobs[0]["train"] == job["train"]  # trained the same way
            assert param_count(ModelConfig.from_dict(cjobs[0]["model"])) <= n_hybrid
    last = by_label[("meaning", "qffn-last-he-4q")][0]
    assert last["model"]["ffn"] == ["classical", "quantum"]
    assert last["model"]["attn"] == "classical"


def test_aggregate_carries_intervals_tests_and_verdicts(sweep, tmp_path):
    from qllm.experiments.aggregate import metric_of
    from qllm.experiments.stats import compare_to_controls

    records = load_records(sorted((sweep["out"] / "runs").glob("*.json")))
    rows = {r["label"]: r for r in aggregate(records)}
    comps = {c["control"]: c for c in compare_to_controls(records, metric_of)}
    assert set(comps) == {"width", "params", "bottleneck", "no_entanglement"}
    hybrid = rows["qffn-he-4q"]
    for control, c in comps.items():
        assert hybrid[f"vs_{control}_verdict"] == c["verdict"]
        assert hybrid[f"vs_{control}_ci_low"] <= hybrid[f"vs_{control}_mean"] \
            <= hybrid[f"vs_{control}_ci_high"]
    assert hybrid["vs_width_mean"] == pytest.approx(hybrid["d_width_mean"])
    assert rows["classical-width"]["vs_width_verdict"] is None
    copy = tmp_path / "out"
    shutil.copytree(sweep["out"] / "runs", copy / "runs")
    write_outputs(copy, progress=False)
    text = (copy / "attribution.md").read_text()
    assert text.count("| meaning | qffn-he-4q |") == 4 and "verdict" in text
    assert (copy / "figures" / "pareto_qpu.png").exists() and (copy / "pareto.md").exists()


@pytest.mark.parametrize("seed", range(10))
def test_pareto_frontier_against_its_definition(seed):
    import numpy as np

    from qllm.experiments.pareto import non_dominated

    rng = np.random.default_rng(seed)
    pts = [(int(c), float(m)) for c, m in zip(rng.integers(0, 5, 12), rng.integers(0, 5, 12))]
    for lower in (False, True):
        sign = -1 if lower else 1
        flags = non_dominated(pts, lower_is_better=lower)
        for (c, m), flag in zip(pts, flags):
            beaten = any(c2 <= c and sign * m2 >= sign * m and (c2, m2) != (c, m)
                         for c2, m2 in pts)
            assert flag == (not beaten)
        best = max(range(len(pts)), key=lambda i: (sign * pts[i][1], -pts[i][0]))
        assert flags[best]  # the cheapest of the best metric is always on the frontier


def test_attribution_command_prints_the_verdicts(sweep, capsys, tmp_path):
    from qllm.cli import main

    assert main(["attribution", str(sweep["out"])]) == 0
    out = capsys.readouterr().out
    assert out.count("| meaning | qffn-he-4q |") == 4 and "Pareto" in out
    assert main(["attribution", str(tmp_path)]) == 2
    assert "runs/*.json" in capsys.readouterr().err
