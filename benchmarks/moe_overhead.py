"""Where a quantum MoE step's extra time goes: the stacked weight-matrix build, the stacked engine
call with and without padding, and AdamW's step, each against the single quantum FFN's peer.

All calls run interleaved (round robin) in one process; the table shows each one's minimum over
the repeats (the machine is shared, so the minimum is the least disturbed figure).

    OMP_NUM_THREADS=1 python benchmarks/moe_overhead.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import time_round_robin, write_rows  # noqa: E402

from qllm.config import ModelConfig, MoEConfig, QuantumConfig
from qllm.engine import simulate, simulate_stacked
from qllm.engine.fixed_matrix import FixedMatrix, core_parts
from qllm.engine.plan import make_plan
from qllm.layers import FFNS
from qllm.layers.experts import load_balancing_loss, route
from qllm.model import HybridTransformer


def engine_calls(spec, experts: int, padded: int, unpadded: int, tokens: int) -> dict:
    """Forward + backward closures of the stacked and single engine calls."""
    def stacked(B):
        x = torch.rand(experts, B, spec.n_inputs, requires_grad=True)
        w = torch.rand(experts, spec.n_weights, requires_grad=True)
        return lambda: simulate_stacked(spec, x, w).sum().backward()

    def single(B):
        x = torch.rand(B, spec.n_inputs, requires_grad=True)
        w = torch.rand(spec.n_weights, requires_grad=True)
        return lambda: simulate(spec, x, w).sum().backward()

    plan = make_plan(spec)
    stages = core_parts(plan)[2]

    def build(lead):
        w = torch.rand(*lead, spec.n_weights, requires_grad=True)

        def run():
            M = FixedMatrix.apply(plan.sources.shared(w), stages, spec.n_qubits, torch.complex64)
            torch.view_as_real(M).sum().backward()
        return run

    return {"FixedMatrix, one": build(()), "FixedMatrix, 1 stacked": build((1,)),
            f"FixedMatrix, {experts} stacked": build((experts,)),
            f"FixedMatrix, {4 * experts} stacked": build((4 * experts,)),
            f"simulate_stacked {experts} x {padded} (padded)": stacked(padded),
            f"simulate_stacked {experts} x {unpadded} (no padding)": stacked(unpadded),
            f"simulate {tokens}": single(tokens)}


def optimizer_steps(args) -> dict:
    """AdamW step closures of the two models (gradients from one backward), per-tensor and
    foreach (the optimizer's multi-tensor path)."""
    q = QuantumConfig(n_qubits=args.qubits)
    moe = MoEConfig(n_experts=args.experts, top_k=1, capacity_factor=1.25)
    x, y = torch.rand(32, 16, 4), torch.randint(0, 10, (32,))
    out = {}
    for name, variant in {"qffn": dict(ffn="quantum"), "qmoe": dict(ffn="quantum_moe", moe=moe)}.items():
        m = HybridTransformer(ModelConfig(input_dim=4, n_classes=10, block_size=16, n_embd=32,
                                          n_head=4, n_layer=2, quantum=q, **variant))
        m(x, y)[1].backward()
        for foreach in (False, True):  # False: torch's CPU default, one loop step per tensor
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3, foreach=foreach)
            out[f"AdamW.step foreach={foreach}, {name} ({len(list(m.parameters()))} tensors)"] \
                = opt.step
    return out


def moe_parts(args) -> dict:
    """Forward + backward closures of a QuantumMoE sublayer's routing and projections, and of
    the whole sublayer against a QuantumFFN (32 x 16 tokens, n_embd 32)."""
    q = QuantumConfig(n_qubits=args.qubits)
    moe = MoEConfig(n_experts=args.experts, top_k=1, capacity_factor=1.25)
    cfg = dict(input_dim=4, n_classes=10, block_size=16, n_embd=32, n_head=4, n_layer=2, quantum=q)
    qffn = FFNS["quantum"](ModelConfig(ffn="quantum", **cfg))
    qmoe = FFNS["quantum_moe"](ModelConfig(ffn="quantum_moe", moe=moe, **cfg))
    x = torch.randn(32, 16, 32, requires_grad=True)
    dispatched = torch.randn(args.experts, 160, 32, requires_grad=True)

    def router():
        r = route(qmoe.router(x.reshape(-1, 32)), 1, 1.25)
        (r.gates.sum() + load_balancing_loss(r)).backward()

    def projections():
        angles = qmoe.down(dispatched)
        n_out = qmoe.experts[0].vqc.n_outputs
        qmoe.up(angles[..., :n_out]).sum().backward()

    return {"QuantumFFN sublayer": lambda: qffn(x).sum().backward(),
            f"QuantumMoE sublayer, {args.experts} experts": lambda: qmoe(x).sum().backward(),
            "  its router + load-balancing loss": router,
            "  its stacked down + up projections": projections}


def _timed(f):
    """``f`` as a step that returns its own seconds (what time_round_robin collects)."""
    def step() -> float:
        t = time.perf_counter()
        f()
        return time.perf_counter() - t
    return step


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qubits", type=int, default=4)
    p.add_argument("--experts", type=int, default=4)
    p.add_argument("--repeats", type=int, default=150)
    p.add_argument("--only", choices=["build", "all"], default="all",
                   help="build: the FixedMatrix rows alone (no other calls between them)")
    p.add_argument("--out", default="results/moe_overhead.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    spec = QuantumConfig(n_qubits=args.qubits).build_spec()
    calls = engine_calls(spec, args.experts, 160, 108, 512)
    if args.only == "build":
        calls = {name: f for name, f in calls.items() if name.startswith("FixedMatrix")}
    else:
        calls |= moe_parts(args) | optimizer_steps(args)
    times = time_round_robin({name: _timed(f) for name, f in calls.items()}, args.repeats, 5)
    rows = [{"call": name, "min_ms": 1e3 * min(ts)} for name, ts in times.items()]
    print(f"{'call (forward + backward)':<52} {'min ms':>8}")
    for r in rows:
        print(f"{r['call']:<52} {r['min_ms']:>8.3f}")
    return write_rows(args, rows)


if __name__ == "__main__":
    main()
