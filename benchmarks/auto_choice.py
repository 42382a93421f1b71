"""Does strategy "auto" pick the fastest path? Times every path on the same workload and reports
auto's time over the best one's.

Paths, forward + backward of ``build_circuit(n, layers)`` on B tokens (inputs and weights need
gradients): "gates" and "fused" (plain autograd), "core" (the dense product-state core with its
hand-written backwards), "kron" (the Kronecker core: the weight layers block by block) and
"pauli" (the Heisenberg core: the observables as Pauli sums read on product states), whatever
the cost model says. The cost models (``qllm/engine/fused.py``, ``core_cost_us`` in
``qllm/engine/fixed_matrix.py``, ``kron_cost_us`` in ``qllm/engine/kron.py``, ``pauli_cost_us`` in
``qllm/engine/pauli.py``) were fitted on a 2-core
CPU; run this on other hardware to see how far their choices are from the best there.

    python benchmarks/auto_choice.py                                 # n = 4..10, B = 64..16384
    python benchmarks/auto_choice.py --qubits 6 --batch 256 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.engine.pauli import pauli_program
from qllm.engine.plan import make_plan
from qllm.results import machine, versions, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import auto_path, make_inputs, round_robin_times  # noqa: E402

PATHS = ("gates", "fused", "core", "kron", "pauli")


def step(spec, x, w, strategy: str):
    def run():
        simulate(spec, x, w, strategy).sum().backward()
    return run


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qubits", type=int, nargs="+", default=[4, 6, 7, 8, 9, 10])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256, 1024, 4096, 16384])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default="results/auto_choice.json")
    args = p.parse_args(argv)
    rows = []
    print(f"{'n':>3} {'B':>6} " + " ".join(f"{p + ' ms':>9}" for p in PATHS)
          + "  auto    best   auto/best")
    for n in args.qubits:
        spec = build_circuit(n, args.layers)
        for batch in args.batch:
            x, w = make_inputs(n, batch, spec, "cpu", torch.float32)
            paths = {path: step(spec, x, w, path) for path in PATHS
                     if path != "pauli" or pauli_program(make_plan(spec)) is not None}
            ms = {k: 1e3 * v[0] for k, v in round_robin_times(paths, args.repeats, 1, "cpu").items()}
            auto, best = auto_path(spec, batch), min(ms, key=ms.get)
            rows.append({"n_qubits": n, "batch": batch, "ms": ms, "auto": auto, "best": best,
                         "auto_over_best": ms[auto] / ms[best]})
            print(f"{n:>3} {batch:>6} " + " ".join(f"{ms.get(p, float('nan')):>9.2f}"
                                                   for p in PATHS)
                  + f"  {auto:<7} {best:<6} {ms[auto] / ms[best]:>6.2f}", flush=True)
    worst = max(r["auto_over_best"] for r in rows)
    print(f"auto's worst choice: {worst:.2f}x the best path")
    out = {"config": vars(args), "rows": rows, "worst_auto_over_best": worst,
           "threads": torch.get_num_threads(), "versions": versions(), "machine": machine()}
    write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
