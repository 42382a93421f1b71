"""Training step of a mixture of quantum experts against a single quantum FFN (same circuit).

``quantum_moe`` with E experts and top-k routing simulates only the tokens routed to each expert,
all experts as one stacked engine call; a single quantum FFN simulates every token once. With
top-1 the circuits per step are the same, so the MoE's step should cost little more (router,
gather and scatter, E small weight matrices, padding to the busiest expert). The variants take
their steps in turn (round robin) on the same batch, so machine drift moves them alike; the table
shows the median step and its ratio to the single quantum FFN measured in the same run.

    python benchmarks/moe_speed.py                        # CPU, digits-shaped batch (32 x 16 x 4)
    python benchmarks/moe_speed.py --experts 8 --top-k 2 --qubits 6
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import digits_batch, make_step, step_parser, time_round_robin  # noqa: E402

from qllm.config import ModelConfig, MoEConfig, QuantumConfig  # noqa: E402
from qllm.model import HybridTransformer  # noqa: E402
from qllm.results import machine, versions, write_json  # noqa: E402


def variants(args) -> dict:
    q = QuantumConfig(n_qubits=args.qubits)
    moe = MoEConfig(n_experts=args.experts, top_k=args.top_k,
                    capacity_factor=args.capacity_factor)
    return {"qffn": dict(ffn="quantum", quantum=q),
            f"qmoe-{args.experts}e-top{args.top_k}": dict(ffn="quantum_moe", quantum=q, moe=moe),
            f"moe-{args.experts}e-top{args.top_k} (classical)": dict(ffn="moe", quantum=q, moe=moe),
            "classical": dict()}


def main(argv=None) -> dict:
    p = step_parser(__doc__)
    p.add_argument("--qubits", type=int, default=4)
    p.add_argument("--experts", type=int, default=4)
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--capacity-factor", type=float, default=1.25)
    p.add_argument("--out", default="results/moe_speed.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    x, y = digits_batch(args)
    models, steps = {}, {}
    for name, variant in variants(args).items():
        cfg = ModelConfig(input_dim=4, n_classes=10, block_size=args.seq_len, n_embd=args.n_embd,
                          n_head=4, n_layer=args.n_layer, **variant)
        models[name] = HybridTransformer(cfg).to(device)
        steps[name] = make_step(models[name], x, y)
    times = time_round_robin(steps, args.steps, args.warmup)
    base = statistics.median(times["qffn"])
    tokens = args.batch * args.seq_len
    rows = []
    for name, m in models.items():
        layers = m.quantum_layers()
        for layer in layers:
            layer.backend.stats.reset()
        with torch.no_grad():
            m(x)
        circuits = sum(layer.backend.stats.circuits for layer in layers)
        med = statistics.median(times[name])
        rows.append({"variant": name, "median_ms": 1e3 * med, "ratio_to_qffn": med / base,
                     "params": m.num_params(), "quantum_params": m.num_params(True),
                     "circuits_per_token": circuits / tokens / args.n_layer})
    print(f"train step, {args.batch} x {args.seq_len} tokens, n_embd={args.n_embd}, "
          f"{args.n_layer} blocks, {args.qubits} qubits, device={args.device}, "
          f"{args.steps} interleaved steps")
    print(f"{'variant':<28} {'ms/step':>9} {'x qffn':>7} {'params':>8} {'circuits/token':>15}")
    for r in rows:
        print(f"{r['variant']:<28} {r['median_ms']:>9.2f} {r['ratio_to_qffn']:>7.2f} "
              f"{r['params']:>8d} {r['circuits_per_token']:>15.2f}")
    out = {"config": vars(args), "rows": rows, "versions": versions(), "machine": machine()}
    write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
