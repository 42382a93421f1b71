"""One forward pass of 1024 4-qubit circuits with 1024 shots: the `aer` backend (all parameter sets
bound into one Aer job) against PennyLane's `qiskit.aer` device driven by `qml.qnn.TorchLayer`.

The PennyLane peer runs circuits one by one (seconds for a handful), so it is timed on a small
batch (``--peer-batch``, default 16) and scaled linearly to the full batch; the table says so.
Also shown, same run: `aer` with Aer's SamplerV2 shot-by-shot sampler, `aer` exact,
`aer:fake_manila` with shots (calibrated noise), the native engine with shots, and the native
engine's exact time before and after Aer ran in this process (Aer's OpenMP threads must not slow
torch). Each row is the best of several repeats (200 for the ~1 ms native rows):
other jobs on a shared machine make single timings noisy.

    python benchmarks/aer_speed.py                  # writes results/aer_speed.json
    python benchmarks/aer_speed.py --batch 256 --out /tmp/aer.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from qllm.backends import get_backend
from qllm.circuits import build_circuit
from qllm.results import machine, versions, write_json


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def pennylane_torchlayer(spec, shots: int, seed: int):
    """The usual PennyLane route: a QNode on qiskit.aer wrapped in qml.qnn.TorchLayer."""
    import pennylane as qml

    dev = qml.device("qiskit.aer", wires=spec.n_qubits, seed_simulator=seed)
    qnode = qml.set_shots(qml.QNode(spec.to_pennylane(), dev, interface="torch"), shots=shots)
    return qml.qnn.TorchLayer(qnode, {"weights": (spec.n_weights,)})


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1024, help="circuits (tokens) per forward")
    p.add_argument("--shots", type=int, default=1024)
    p.add_argument("--n-qubits", type=int, default=4)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--peer-batch", type=int, default=16,
                   help="samples the PennyLane peer is timed on (scaled to --batch)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/aer_speed.json")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")

    torch.manual_seed(args.seed)
    spec = build_circuit(n_qubits=args.n_qubits, n_layers=args.n_layers)
    x = torch.rand(args.batch, spec.n_inputs, dtype=torch.float64) * 3.14
    w = torch.rand(spec.n_weights, dtype=torch.float64) * 6.28
    rows = {}

    native = get_backend("torch")
    native.expval(spec, x, w)  # warm-up
    rows["torch exact (before Aer)"] = best_time(lambda: native.expval(spec, x, w), 200)
    native_shots = get_backend("torch", shots=args.shots, seed=args.seed)
    rows["torch shots"] = best_time(lambda: native_shots.expval(spec, x, w), args.repeats)

    aer = get_backend("aer", shots=args.shots, seed=args.seed)
    aer.expval(spec, x[:2], w)  # transpile once, load Aer
    aer.stats.reset()
    rows["aer shots"] = best_time(lambda: aer.expval(spec, x, w), args.repeats)
    jobs_per_forward = aer.stats.jobs / args.repeats
    sampler = get_backend("aer", shots=args.shots, seed=args.seed, sampling="sampler")
    sampler.expval(spec, x[:2], w)
    rows["aer shots (sampling='sampler', SamplerV2)"] = best_time(lambda: sampler.expval(spec, x, w), 1)
    aer_exact = get_backend("aer")
    aer_exact.expval(spec, x[:2], w)
    rows["aer exact"] = best_time(lambda: aer_exact.expval(spec, x, w), args.repeats)
    fake = get_backend("aer:fake_manila", shots=args.shots, seed=args.seed)
    fake.expval(spec, x[:2], w)
    rows["aer:fake_manila shots"] = best_time(lambda: fake.expval(spec, x, w), args.repeats)
    rows["torch exact (after Aer)"] = best_time(lambda: native.expval(spec, x, w), 200)

    layer = pennylane_torchlayer(spec, args.shots, args.seed)
    with torch.no_grad():
        layer.weights.copy_(w.float())
        small = x[: args.peer_batch].float()
        layer(small[:1])  # warm-up
        peer_small = best_time(lambda: layer(small), 1)
    scale = args.batch / args.peer_batch
    rows[f"pennylane qiskit.aer TorchLayer ({args.peer_batch} timed, x{scale:g})"] = peer_small * scale
    peer = peer_small * scale

    speedup = peer / rows["aer shots"]
    print(f"{args.batch} circuits x {args.shots} shots, {spec.n_qubits} qubits, "
          f"{spec.n_weights} weights, one forward pass (best of {args.repeats})")
    print(f"{'backend':<52} {'seconds':>10} {'per circuit (ms)':>17}")
    for name, t in rows.items():
        print(f"{name:<52} {t:>10.4f} {1e3 * t / args.batch:>17.4f}")
    print(f"aer jobs per forward: {jobs_per_forward:g}")
    print(f"aer backend vs PennyLane qiskit.aer TorchLayer: {speedup:.0f}x faster "
          f"(target >= 100x)")
    slow = rows["torch exact (after Aer)"] / rows["torch exact (before Aer)"]
    print(f"native engine after Aer ran in this process: {slow:.2f}x its time before")
    result = {
        "benchmark": "aer_speed",
        "config": vars(args),
        "seconds": rows,
        "peer_seconds_measured": peer_small,
        "peer_scaled_from": args.peer_batch,
        "aer_jobs_per_forward": jobs_per_forward,
        "speedup_vs_pennylane_qiskit_aer": speedup,
        "native_after_aer_ratio": slow,
        "machine": machine(),
        "versions": versions(),
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
