"""The multimodal benchmark (``qllm bench --preset multimodal``): the ``digits_qa`` task (a digit
image's 16 patch tokens joined with a 4-token question, "what comes after ?"), trained over 3 seeds
with four models of one shape (n_embd 32, 4 heads, 2 blocks), 15 epochs each:

- ``classical``: self-attention over the joined sequence, classical FFN;
- ``fusion``: plus the classical fusion term (``qllm.layers.fusion.ClassicalFusion``);
- ``qfusion``: the same with a 4-qubit VQC as the fusion function (``QuantumFusion``);
- ``classical-params``: an all-classical model within 10% of ``qfusion``'s parameter count
  (``n_embd`` and ``mlp_ratio`` searched, counted on the built models), unless ``classical`` is
  that model already (it is at n_embd 32: 26,922 against 27,794 parameters, -3.1%).

Output under ``out_dir/multimodal/``: ``runs/<label>-seed<k>.json`` (each run's results JSON with
its config, seed, versions and cost report), ``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

DIMS = {"n_embd": 32, "n_head": 4, "n_layer": 2}
TRAIN = {"quick": {"epochs": 15}, "tiny": {"epochs": 1, "max_steps": 3}}
SEEDS = {"quick": (0, 1, 2), "tiny": (0,)}
COST = {"gradient": "parameter-shift", "shots": 1024, "target": "ibm_torino",
        "profile": "ibm_heron"}


def model_configs(task) -> dict:
    """``{label: ModelConfig}`` of the four models, with the task's fields filled in."""
    from qllm.config import ModelConfig, QuantumConfig
    from qllm.train import model_config_for

    base = ModelConfig(**DIMS, input_dim=task.input_dim, quantum=QuantumConfig(n_qubits=4))
    cfgs = {name: model_config_for(task, base.override({"attn": attn}))
            for name, attn in (("classical", "classical"), ("fusion", "fusion"),
                               ("qfusion", "qfusion"))}
    matched = param_matched(cfgs["qfusion"])
    if matched != cfgs["classical"]:  # the same-width model may already be within 10%
        cfgs["classical-params"] = matched
    return cfgs


def param_count(cfg) -> int:
    from qllm.model import HybridTransformer

    return HybridTransformer(cfg).num_params()


def param_matched(hybrid, tolerance: float = 0.10):
    """The all-classical config nearest ``hybrid``'s parameter count (n_embd in steps of n_head,
    mlp_ratio 1..8), preferring the hybrid's mlp_ratio; within ``tolerance`` or ConfigError."""
    from qllm.errors import ConfigError

    target = param_count(hybrid)
    best = None
    for n_embd in range(hybrid.n_head, 4 * hybrid.n_embd + 1, hybrid.n_head):
        for ratio in range(1, 9):
            cand = hybrid.override({"attn": "classical", "ffn": "classical", "n_embd": n_embd,
                                    "mlp_ratio": ratio})
            n = param_count(cand)
            rel = abs(n - target) / target
            key = (rel > tolerance, abs(ratio - hybrid.mlp_ratio), rel)
            if best is None or key < best[0]:
                best = (key, cand)
    if best[0][0]:
        raise ConfigError(f"no classical model within {tolerance:.0%} of {target} parameters")
    return best[1]


def run(out_dir: str | Path = "results", progress: bool = True, preset: str = "quick",
        seeds: tuple | None = None) -> list:
    """Train every model over the seeds (runs whose JSON exists are reused; ``seeds`` a subset,
    e.g. to split the runs over processes), write the summary."""
    from qllm.config import TrainConfig
    from qllm.data import load_task
    from qllm.results import machine, versions, write_json
    from qllm.train import train

    torch.set_num_threads(1)  # tiny models: one thread is faster (as the sweep workers)
    t0 = time.perf_counter()
    out = Path(out_dir) / "multimodal"
    task = load_task("digits_qa")
    cfgs = model_configs(task)
    jobs = [(label, cfg, seed) for seed in (seeds or SEEDS[preset]) for label, cfg in cfgs.items()]
    records = []
    for label, cfg, seed in tqdm(jobs, desc="multimodal runs", disable=not progress):
        path = out / "runs" / f"{label}-seed{seed}.json"
        if not path.exists():
            tcfg = TrainConfig(task="digits_qa", seed=seed, batch_size=32, lr=3e-3,
                               progress=False, **TRAIN[preset])
            res = train(cfg, tcfg, out_dir=out / "work" / f"{label}-seed{seed}",
                        cost_options=COST, task=task)
            res.pop("model")
            write_json(path, {"label": label, **res})
        records.append(json.loads(path.read_text()))
    rows = summarize(records)
    target = next(r["params"] for r in rows if r["label"] == "qfusion")
    for r in rows:
        r["params_vs_qfusion"] = (r["params"] - target) / target
    write_json(out / "summary.json", {"rows": rows, "preset": preset, "cost": COST,
                                      "versions": versions(), "machine": machine(),
                                      "wall_time_s": time.perf_counter() - t0})
    text = table(rows)
    (out / "summary.md").write_text(text + "\n")
    if progress:
        print(text)
    return rows


def summarize(records: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per model."""
    by: dict = {}
    for r in records:
        by.setdefault(r["label"], []).append(r)
    rows = []
    for label, rs in by.items():
        acc = [r["final"]["accuracy"] for r in rs]
        wall = [r["wall_time_s"] for r in rs]
        q = rs[0]["cost"]["quantum"] if rs[0].get("cost") else []
        proj = rs[0]["cost"]["projections"].get(COST["profile"], {}) if q else {}
        rows.append({"label": label, "seeds": [r["seed"] for r in rs],
                     "accuracy_mean": statistics.mean(acc),
                     "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                     "accuracies": acc, "params": rs[0]["params"]["total"],
                     "quantum_params": rs[0]["params"]["quantum"],
                     "wall_time_s": statistics.mean(wall),
                     "two_qubit_gates": sum((x["transpiled"] or {}).get("n_2q", 0) for x in q),
                     "qpu_s_per_epoch": proj.get("per_epoch", {}).get("qpu_seconds"),
                     "train_config": rs[0]["train_config"], "model_config": rs[0]["model_config"],
                     "versions": rs[0]["versions"]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | test accuracy (mean ± sd) | seeds | params (in circuits) | train wall s | "
             "2q gates on ibm_torino | QPU s / epoch (ibm_heron) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        qpu = f"{r['qpu_s_per_epoch']:,.0f}" if r["qpu_s_per_epoch"] else "-"
        lines.append(f"| {r['label']} | {100 * r['accuracy_mean']:.1f} ± "
                     f"{100 * r['accuracy_std']:.1f}% | {len(r['seeds'])} | {r['params']:,} "
                     f"({r['quantum_params']}) | {r['wall_time_s']:.1f} | "
                     f"{r['two_qubit_gates'] or '-'} | {qpu} |")
    return "\n".join(lines)
