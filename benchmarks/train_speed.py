"""Time per training step of hybrid transformers against their classical twin (same widths).

Each variant runs forward + backward + AdamW step on the same random batch; the table shows the
median step time and its ratio to the classical twin measured in the same run. The variants take
their steps in turn (round robin), so a machine that speeds up or slows down during the run
moves every variant alike and the ratios hold.

    python benchmarks/train_speed.py                      # CPU, digits-shaped batch (32 x 16 x 4)
    python benchmarks/train_speed.py --device cuda --batch 256 --cuda-graphs
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from qllm.config import ModelConfig, QuantumConfig
from qllm.model import HybridTransformer
from qllm.results import machine, versions, write_json

VARIANTS = {
    "classical": dict(),
    "qffn-4q": dict(ffn="quantum", quantum=QuantumConfig(n_qubits=4)),
    "qffn-6q": dict(ffn="quantum", quantum=QuantumConfig(n_qubits=6)),
    "qattn-4q": dict(attn="quantum", quantum=QuantumConfig(n_qubits=4)),
    "qattn+qffn-4q": dict(attn="quantum", ffn="quantum", quantum=QuantumConfig(n_qubits=4)),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_step(model: HybridTransformer, x, y):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> float:
        sync(x.device)
        t = time.perf_counter()
        _, loss = model(x, y)
        loss = loss + model.aux_loss()  # as qllm.train: an MoE's load balancing trains too
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(x.device)
        return time.perf_counter() - t

    return step


def time_round_robin(steps: dict, n_steps: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per step of each variant, the variants stepping in turn."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(n_steps):
        for name, step in steps.items():
            times[name].append(step())
    return times


def step_parser(doc: str) -> argparse.ArgumentParser:
    """The options every training-step benchmark shares (this one and moe_speed.py)."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32, help="sequences per step")
    p.add_argument("--seq-len", type=int, default=16)
    p.add_argument("--n-embd", type=int, default=32)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    return p


def digits_batch(args) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded digits-shaped batch: ``args.batch`` sequences of ``args.seq_len`` x 4, 10 classes."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, args.seq_len, 4, device=device)
    return x, torch.randint(0, 10, (args.batch,), device=device)


def main(argv=None) -> dict:
    p = step_parser(__doc__)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--cuda-graphs", action="store_true",
                   help="quantum sublayers replay CUDA graphs (backend option cuda_graphs=True)")
    p.add_argument("--out", default="results/train_speed.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    x, y = digits_batch(args)
    models, steps = {}, {}
    for name in args.variants:
        variant = dict(VARIANTS[name])
        if args.cuda_graphs and "quantum" in variant:
            variant["quantum"] = dataclasses.replace(variant["quantum"],
                                                     backend_options={"cuda_graphs": True})
        cfg = ModelConfig(input_dim=4, n_classes=10, block_size=args.seq_len, n_embd=args.n_embd,
                          n_head=4, n_layer=args.n_layer, **variant)
        models[name] = HybridTransformer(cfg).to(device)
        steps[name] = make_step(models[name], x, y)
    times = time_round_robin(steps, args.steps, args.warmup)
    rows = [{"variant": name, "median_ms": 1e3 * statistics.median(times[name]),
             "params": m.num_params(), "quantum_params": m.num_params(True)}
            for name, m in models.items()]
    base = next((r["median_ms"] for r in rows if r["variant"] == "classical"), None)
    print(f"train step, {args.batch} x {args.seq_len} tokens, n_embd={args.n_embd}, "
          f"{args.n_layer} blocks, device={args.device}")
    print(f"{'variant':<16} {'ms/step':>9} {'x classical':>12} {'params':>8}")
    for r in rows:
        r["ratio_to_classical"] = r["median_ms"] / base if base else None
        ratio = f"{r['ratio_to_classical']:.2f}" if base else "-"
        print(f"{r['variant']:<16} {r['median_ms']:>9.2f} {ratio:>12} {r['params']:>8d}")
    return write_rows(args, rows)


def write_rows(args, rows: list[dict]) -> dict:
    """The benchmark's JSON (config, rows, versions, machine) at ``args.out``; returns it."""
    out = {"config": vars(args), "rows": rows, "versions": versions(), "machine": machine()}
    write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
