"""One training job of a sweep: train (resuming a killed run), attach the cost ledger, write its
JSON. Kept apart from the presets (bench.py) so the sweep runner imports no preset code."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from qllm.config import ModelConfig, TrainConfig
from qllm.errors import CheckpointError


def run_train_job(job: dict, out_dir: Path, path: Path) -> dict:
    """Train one job's model (resuming from its checkpoint if a killed run left one), add the
    cost ledger, and write ``path``. Runs in a sweep worker."""
    from qllm.results import write_json
    from qllm.train import train

    model_cfg, train_cfg = ModelConfig.from_dict(job["model"]), TrainConfig.from_dict(job["train"])
    work = out_dir / "work" / job["run_id"]
    with contextlib.redirect_stdout(io.StringIO()):  # per-epoch lines would interleave
        try:
            res = train(model_cfg, train_cfg, out_dir=work, cost_options=job["cost"],
                        resume=(work / "checkpoint.pt").exists())
        except CheckpointError:  # a checkpoint that cannot be read: start this run again
            (work / "checkpoint.pt").unlink(missing_ok=True)
            res = train(model_cfg, train_cfg, out_dir=work, cost_options=job["cost"])
    res.pop("model")
    res["cost"] = {"ledger": cost_ledger(res["cost"], job["cost"]), "report": res["cost"]}
    record = {"job": {k: v for k, v in job.items() if k not in ("model", "train")}, **res}
    write_json(path, record)
    return record


def cost_ledger(report: dict, cost: dict) -> dict:
    """The headline columns of a run's cost report (made by ``train`` under the job's ``cost``
    settings): qubits, transpiled 2-qubit gates, executions and QPU seconds."""
    q = report["quantum"]
    proj = report["projections"].get(cost["profile"], {})
    total = next((c for c in report["classical"] if c["name"] == "total"), {})
    return {
        "qubits": max((r["n_qubits"] for r in q), default=0),
        "quantum_layers": len(q),
        "two_qubit_gates": sum((r["transpiled"] or {}).get("n_2q", 0) for r in q),
        "two_qubit_gates_logical": sum(r["logical"]["n_2q"] for r in q),
        "executions_per_epoch": proj.get("per_epoch", {}).get("executions", 0),
        "qpu_seconds_per_epoch": proj.get("per_epoch", {}).get("qpu_seconds", 0.0),
        "executions_per_token": proj.get("per_inference_token", {}).get("executions", 0),
        "qpu_seconds_per_token": proj.get("per_inference_token", {}).get("qpu_seconds", 0.0),
        "flops_per_token": total.get("flops_per_token"),
        "steps_per_epoch": report["settings"]["steps_per_epoch"], **cost,
    }
