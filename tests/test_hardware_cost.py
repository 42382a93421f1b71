"""`qllm cost results.json` projects the run that wrote it (its shots, batch size, steps), takes
what-if flags, and projects the PennyLane plugin's one-job-per-circuit route next to ibm:."""

from __future__ import annotations

import json

import pytest

from qllm.cli import main
from qllm.config import TrainConfig
from qllm.cost.ledger import route_for
from qllm.train import train
from tests.hardware_helpers import tiny_config


@pytest.fixture(scope="module")
def results_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = tiny_config("torch", "parameter-shift", shots=256)
    train(cfg, TrainConfig(task="parity", task_options={"n": 40, "seq_len": 4}, epochs=3,
                           batch_size=8, max_steps=2, progress=False), out_dir=out)
    return out / "results.json"


def _cost(capsys, *args):
    assert main(["cost", *map(str, args), "--json", "--profile", "ibm_heron"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_of_a_results_json_is_the_runs(results_json, capsys):
    stored = json.loads(results_json.read_text())["cost"]
    assert stored["settings"]["shots"] == 256 and stored["settings"]["steps"] == 2
    assert stored["measured"]["train"]["steps"] == 2
    rep = _cost(capsys, results_json)
    s = rep["settings"]
    assert (s["shots"], s["batch_size"], s["steps"]) == (256, 8, 2)
    per_step = rep["projections"]["ibm_heron"]["per_step"]
    assert rep["projections"]["ibm_heron"]["per_run"]["executions"] == 2 * per_step["executions"]
    what_if = _cost(capsys, results_json, "--shots", 1024, "--batch-size", 16, "--epochs", 4)
    w = what_if["settings"]
    assert (w["shots"], w["batch_size"], w["epochs"]) == (1024, 16, 4)
    assert w["steps"] == 4 * w["steps_per_epoch"]
    assert what_if["projections"]["ibm_heron"]["per_step"]["executions"] == \
        2 * per_step["executions"]  # twice the batch


def test_plugin_route_pays_one_job_per_circuit(results_json, capsys):
    ibm = _cost(capsys, results_json, "--route", "ibm:ibm_torino", "--gradient",
                "parameter-shift")["projections"]["ibm_heron"]["per_step"]
    plugin = _cost(capsys, results_json, "--route", "pennylane:qiskit.remote", "--gradient",
                   "parameter-shift")["projections"]["ibm_heron"]["per_step"]
    assert ibm["executions"] == plugin["executions"]
    assert ibm["jobs"] == 2  # forward + shifted circuits, one quantum layer
    assert plugin["jobs"] == plugin["executions"]
    assert plugin["qpu_seconds"] > ibm["qpu_seconds"]
    zne = _cost(capsys, results_json, "--route", "ibm:ibm_torino", "--gradient",
                "parameter-shift", "--mitigation", "zne")["projections"]["ibm_heron"]["per_step"]
    assert zne["executions"] == 3 * ibm["executions"] and zne["jobs"] == 2
    assert route_for("ibm:x", mitigation="readout")["calibration_circuits_per_job"] == 2


def test_bad_what_if_flags_exit_2(results_json, capsys):
    assert main(["cost", str(results_json), "--batch-size", "0"]) == 2
    assert main(["cost", str(results_json), "--mitigation", "zne"]) == 2
    assert main(["cost", str(results_json), "--route", "ibm:x", "--mitigation", "magic"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size must be an int >= 1" in err and "--route" in err and "magic" in err
    assert "Traceback" not in err
