"""Benchmark presets: train classical baselines and hybrid models on the same task, same seed, and
print accuracy, parameters and wall time side by side.

``quick`` is the main job of the README: the classical baseline and a hybrid model with a 4-qubit
quantum FFN on ``digits``, a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.errors import ConfigError
from qllm.results import machine, versions, write_json


@dataclass
class Run:
    label: str
    model: ModelConfig
    train: TrainConfig

    @property
    def run_id(self) -> str:
        return f"{self.train.task}-{self.label}-seed{self.train.seed}"


@dataclass
class Preset:
    name: str
    runs: list[Run] = field(default_factory=list)
    description: str = ""


def quick_preset(seeds=(0,)) -> Preset:
    train = dict(task="digits", epochs=15, batch_size=32, lr=3e-3)
    base = dict(input_dim=4, n_embd=32, n_head=4, n_layer=2)
    runs = []
    for seed in seeds:
        runs.append(Run("classical", ModelConfig(**base), TrainConfig(**train, seed=seed)))
        runs.append(Run("hybrid-qffn4", ModelConfig(**base, ffn="quantum",
                                                    quantum=QuantumConfig(n_qubits=4, n_layers=2)),
                        TrainConfig(**train, seed=seed)))
    return Preset("quick", runs, "digits: classical baseline vs quantum FFN (4 qubits, native engine)")


PRESETS = {"quick": quick_preset}


def run_preset(name: str, out_dir: str | Path = "results", progress: bool = True) -> list[dict]:
    """Run every run of a preset (skipping those whose results JSON exists) and print a table."""
    from qllm.train import train

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    preset = PRESETS[name]()
    out_dir = Path(out_dir) / name
    rows = []
    for run in preset.runs:
        run.train.progress = progress
        path = out_dir / run.run_id
        if (path / "results.json").exists():
            import json

            res = json.loads((path / "results.json").read_text())
        else:
            res = train(run.model, run.train, out_dir=path)
            res.pop("model", None)
        rows.append({"run": run.run_id, "label": run.label, "task": run.train.task,
                     "seed": run.train.seed, "accuracy": res["final"]["accuracy"],
                     "params": res["params"]["total"], "quantum_params": res["params"]["quantum"],
                     "wall_time_s": res["wall_time_s"]})
    print(format_table(rows))
    write_json(out_dir / "summary.json", {"preset": name, "description": preset.description,
                                          "rows": rows, "versions": versions(),
                                          "machine": machine(), "date": time.strftime("%Y-%m-%d")})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'run':<32} {'test acc':>9} {'params':>8} {'q-params':>8} {'wall s':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['run']:<32} {r['accuracy']:>9.4f} {r['params']:>8d} "
                     f"{r['quantum_params']:>8d} {r['wall_time_s']:>8.1f}")
    return "\n".join(lines)
