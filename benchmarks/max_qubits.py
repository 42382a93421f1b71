"""The largest circuit the native engine trains at a given batch size, and what it costs.

For n = --start, --start + 1, ...: one training step (forward + backward + AdamW) of a
``QuantumLayer(build_circuit(n, layers))`` on ``--batch`` tokens (inputs need gradients too, as
behind a Linear), in a fresh child process that reports its peak memory (CPU: VmHWM; CUDA:
``torch.cuda.max_memory_allocated``) and the time of its second step. The memory budget is the
device's total memory less ``--reserve-gb``, so the engine's own estimate decides what is refused.
It stops at the first n the estimate refuses, that fails, or whose step took over --max-seconds.

    python benchmarks/max_qubits.py                          # CPU, B = 1024, whole batch
    python benchmarks/max_qubits.py --chunk-size auto        # chunks: memory bounded, time grows
    python benchmarks/max_qubits.py --device cuda --start 14
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

from qllm.results import machine, versions, write_json

CHILD = """
import json, sys, time
import torch
from qllm.circuits import build_circuit
from qllm.quantum_layer import QuantumLayer

n, batch, layers, budget, device, chunk = sys.argv[1:7]
n, batch, layers, budget = int(n), int(batch), int(layers), float(budget)
chunk = None if chunk == "none" else (chunk if chunk == "auto" else int(chunk))
opts = {"memory_budget_gb": budget, "chunk_size": chunk}
layer = QuantumLayer(build_circuit(n, layers), "torch", **opts).to(device)
x = torch.rand(batch, n, generator=torch.Generator().manual_seed(n)).to(device).requires_grad_()
used = layer.backend.chunk_for(layer.spec, batch, x.dtype, x.device)
estimate = layer.backend.estimate_bytes(layer.spec, used, x.dtype)
opt = torch.optim.AdamW(layer.parameters(), lr=1e-3)
times = []
for _ in range(2):
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    layer(x).sum().backward()
    opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    times.append(time.perf_counter() - t)
assert torch.isfinite(layer.weights.grad).all()
if device == "cuda":
    peak = torch.cuda.max_memory_allocated()
else:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(json.dumps({"chunk": used, "estimate": estimate, "peak": peak, "step_s": times[-1]}))
"""


def total_memory(device: str) -> int:
    if device == "cuda":
        return torch.cuda.get_device_properties(0).total_memory
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))


def estimate(n: int, batch: int, layers: int, budget_gb: float, chunk) -> tuple[int, int]:
    """(tokens per chunk, estimated peak bytes), as the child's backend will compute them."""
    from qllm.backends import get_backend
    from qllm.circuits import build_circuit

    backend = get_backend("torch", memory_budget_gb=budget_gb, chunk_size=chunk)
    spec = build_circuit(n, layers)
    used = backend.chunk_for(spec, batch, torch.float32, "cpu")
    return used, backend.estimate_bytes(spec, used, torch.float32)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--start", type=int, default=12)
    p.add_argument("--stop", type=int, default=40)
    p.add_argument("--chunk-size", default="none", help="none, auto, or tokens per chunk")
    p.add_argument("--reserve-gb", type=float, default=2.0,
                   help="memory left for the OS, the interpreter and torch's own buffers")
    p.add_argument("--max-seconds", type=float, default=300.0,
                   help="stop after a step slower than this (the next n takes about 2x longer)")
    p.add_argument("--out", default="results/max_qubits.json")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    chunk = None if args.chunk_size == "none" else (
        args.chunk_size if args.chunk_size == "auto" else int(args.chunk_size))
    total = total_memory(args.device)
    budget_gb = (total - args.reserve_gb * 2**30) / 2**30
    print(f"max_qubits: {args.device}, {total / 2**30:.1f} GiB total, budget {budget_gb:.1f} GiB, "
          f"batch {args.batch}, {args.layers} layers, chunk_size={args.chunk_size}")
    print(f"{'n':>3} {'chunk':>6} {'estimate GiB':>13} {'peak GiB':>9} {'step s':>8}  status")
    rows, largest = [], None
    for n in range(args.start, args.stop + 1):
        used, est = estimate(n, args.batch, args.layers, budget_gb, chunk)
        row = {"n_qubits": n, "chunk": used, "estimate_bytes": est}
        if est > budget_gb * 2**30:
            row["status"] = "refused: estimate over budget"
        else:
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.batch),
                                  str(args.layers), str(budget_gb), args.device,
                                  args.chunk_size], capture_output=True, text=True, check=False)
            row["wall_s"] = time.perf_counter() - t
            if res.returncode == 0:
                row.update(json.loads(res.stdout.strip().splitlines()[-1]), status="trained")
                largest = n
            else:
                tail = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
                row["status"] = f"failed: {tail[:200]}"
        rows.append(row)
        peak = f"{row['peak'] / 2**30:9.2f}" if "peak" in row else f"{'-':>9}"
        step = f"{row['step_s']:8.2f}" if "step_s" in row else f"{'-':>8}"
        print(f"{n:>3} {used:>6} {est / 2**30:>13.2f} {peak} {step}  {row['status']}", flush=True)
        if row["status"] != "trained" or row["step_s"] > args.max_seconds:
            break
    print(f"largest n trained at batch {args.batch}: {largest}")
    data = {"benchmark": "max_qubits", "config": vars(args), "budget_gb": budget_gb,
            "total_memory_bytes": total, "largest_n": largest, "rows": rows,
            "versions": versions(), "machine": machine()}
    print(f"wrote {write_json(args.out, data)}")
    return data


if __name__ == "__main__":
    main()
