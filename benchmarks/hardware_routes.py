"""Hardware routes side by side: what one training step submits on each route (counted by the
ledger), the QPU time each route's submissions project to, and error mitigation measured against
exact values on a fake device.

1. Measured: one step of a tiny hybrid transformer (one 2-qubit FFN circuit, ``--tokens``
   tokens, parameter-shift for inputs and weights) on pennylane:default.qubit (PennyLane's own
   parameter-shift), pennylane:qiskit.remote on fake_manila (the plugin, qllm's parameter-shift),
   aer:fake_manila and ibm:fake_manila (runtime local mode, Batch): jobs, PUBs, circuits, wall s.
2. Projected: a 2-block model with quantum FFNs (4 qubits, seq 16, batch 32, 1024 shots) on the
   ibm_heron profile, through the PennyLane Qiskit plugin (one job per circuit) and through
   ibm: (one job per backend call), with and without mitigation.
3. Mitigation: |value - exact| on aer:fake_manila over ``--inputs`` random inputs at
   ``--shots`` shots, raw vs readout vs zne vs readout+zne; paired one-sided Wilcoxon p-value
   against raw (scipy.stats).

    python benchmarks/hardware_routes.py                 # writes results/hardware_routes.json
    python benchmarks/hardware_routes.py --tokens 1 --inputs 8 --skip-plugin --out /tmp/h.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from qllm.config import ModelConfig, QuantumConfig
from qllm.cost.ledger import CostLedger
from qllm.model import HybridTransformer
from qllm.results import machine, versions, write_json

STEP_ROUTES = {
    "pennylane:default.qubit (PennyLane parameter-shift)": (
        "pennylane:default.qubit", "backprop", {"diff_method": "parameter-shift", "shots": 1024}),
    "pennylane:qiskit.remote fake_manila (plugin)": (
        "pennylane:qiskit.remote", "parameter-shift", {"backend": "fake_manila", "shots": 1024}),
    "aer:fake_manila": ("aer:fake_manila", "parameter-shift", {"shots": 1024, "seed": 1}),
    "ibm:fake_manila (Batch)": ("ibm:fake_manila", "parameter-shift", {"shots": 1024, "seed": 1}),
}


def tiny_model(backend, gradient, options):
    torch.manual_seed(0)
    q = QuantumConfig(n_qubits=2, n_layers=1, backend=backend, gradient=gradient,
                      backend_options=options)
    return HybridTransformer(ModelConfig(input_dim=3, n_classes=2, block_size=8, n_embd=4,
                                         n_head=1, n_layer=1, ffn="quantum", quantum=q))


def measured_steps(tokens: int, skip_plugin: bool) -> list[dict]:
    rows = []
    routes = {k: v for k, v in STEP_ROUTES.items() if not (skip_plugin and "plugin" in k)}
    for name, (backend, gradient, options) in tqdm(routes.items(), desc="routes"):
        model = tiny_model(backend, gradient, options)
        x = torch.rand(1, tokens, 3, generator=torch.Generator().manual_seed(0))
        y = torch.tensor([1])
        ledger = CostLedger(model)
        t = time.perf_counter()
        with ledger.step("train"):
            model(x, y)[1].backward()
        wall = time.perf_counter() - t
        tot = ledger.summary()["train"]
        rows.append({"route": name, "jobs": tot["jobs"], "pubs": tot["pubs"],
                     "circuits": tot["circuits"], "shots": tot["shots"], "wall_s": wall})
    return rows


def projected(profile: str = "ibm_heron") -> list[dict]:
    q = QuantumConfig(n_qubits=4, n_layers=2, gradient="parameter-shift")
    model = HybridTransformer(ModelConfig(input_dim=4, n_classes=2, block_size=16, n_layer=2,
                                          ffn="quantum", quantum=q))
    rows = []
    for name, route, opts in [
            ("PennyLane plugin (pennylane:qiskit.remote)", "pennylane:qiskit.remote", {}),
            ("ibm: Batch", "ibm:ibm_torino", {}),
            ("ibm: Batch + readout", "ibm:ibm_torino", {"mitigation": "readout"}),
            ("ibm: Batch + zne (1, 3, 5)", "ibm:ibm_torino", {"mitigation": "zne"})]:
        rep = model.cost_report(seq_len=16, shots=1024, batch_size=32, steps_per_epoch=10,
                                epochs=1, profile=profile, route=route, route_options=opts)
        step = rep.projections[profile]["per_step"]
        rows.append({"route": name, "jobs_per_step": step["jobs"],
                     "circuits_per_step": step["executions"],
                     "qpu_seconds_per_step": step["qpu_seconds"],
                     "qpu_hours_per_epoch": rep.projections[profile]["per_epoch"]["qpu_seconds"]
                     / 3600})
    return rows


def mitigation(inputs: int, shots: int, seed: int) -> list[dict]:
    from scipy import stats

    from qllm.backends import get_backend
    from qllm.spec import CircuitSpec, Op, inp, w

    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("RY", (1,), (inp(1),)),
                           Op("CNOT", (0, 1)), Op("RY", (0,), (w(0),)), Op("CNOT", (1, 0)),
                           Op("RY", (1,), (w(1),)), Op("CNOT", (0, 1))), n_inputs=2,
                       observables=("ZI", "IZ"))
    x = torch.rand(inputs, 2, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(seed)) * np.pi
    wt = torch.tensor([0.4, 1.2], dtype=torch.float64)
    exact = get_backend("torch").expval(spec, x, wt).numpy()
    rows, raw = [], None
    for m in tqdm(("none", "readout", "zne", "readout+zne"), desc="mitigation"):
        be = get_backend("aer:fake_manila", shots=shots, seed=seed, mitigation=m)
        t = time.perf_counter()
        err = np.abs(be.expval(spec, x, wt).numpy() - exact).ravel()
        row = {"mitigation": m, "mean_abs_error": float(err.mean()),
               "circuits": be.stats.circuits, "wall_s": time.perf_counter() - t}
        if raw is None:
            raw = err
        else:
            row["wilcoxon_p_vs_raw"] = float(stats.wilcoxon(raw, err,
                                                            alternative="greater").pvalue)
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=2)
    ap.add_argument("--inputs", type=int, default=48)
    ap.add_argument("--shots", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-plugin", action="store_true", help="skip the slow plugin route")
    ap.add_argument("--out", default="results/hardware_routes.json")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    data = {"config": vars(args), "seed": args.seed, "versions": versions(),
            "machine": machine(),
            "measured_step": measured_steps(args.tokens, args.skip_plugin),
            "projected_step": projected(),
            "mitigation": mitigation(args.inputs, args.shots, args.seed)}
    data["cost"] = {"wall_seconds": time.perf_counter() - t0}
    for key in ("measured_step", "projected_step", "mitigation"):
        print(f"\n{key}\n" + table(data[key]))
    write_json(args.out, data)
    return data


if __name__ == "__main__":
    main()
