"""Native engine speed: forward + backward time per training step against PennyLane.

Workload: ``build_circuit(n, layers)`` (angle encoding + hardware-efficient RY/RZ + CNOT ring),
B tokens per step, loss = sum of all expectation values, gradients for inputs and weights.
Peers, timed in the same run: PennyLane ``default.qubit`` (torch interface, backprop, parameter
broadcasting); optionally ``lightning.qubit`` (adjoint) and the ``aer`` backend (forward only:
its gradients are parameter-shift, 2P+1 circuits per token). Peers that start OpenMP runtimes
(lightning, Aer) run in a child process so they cannot slow torch here, and so
does torchquantum, in its own venv (``make torchquantum-env``: it needs qiskit < 1.0); its first
4 tokens' values are checked against the native engine.

    python benchmarks/engine_speed.py                    # n = 4..10, B = 1024, 2 layers
    python benchmarks/engine_speed.py --full             # n = 4..12, B = 16384, 4 layers
    python benchmarks/engine_speed.py --lightning --aer --out results/engine_speed.json
    make torchquantum-env && python benchmarks/engine_speed.py --torchquantum
    python benchmarks/engine_speed.py --device cuda      # + CUDA graphs, the fused FLOP rate

Each row also gives every path's achieved FLOP rate (``path_flops``: the batch matrix products
it runs, counted by hand) beside this machine's measured rate of a [B, 2^n] x [2^n, 2^n]
complex product, so the distance to the arithmetic floor is visible per path.

Times are medians over ``--repeats`` after warm-up (the native variants timed in turns); ratios
are peer time / native ("auto") time. On CUDA the native strategies also run with CUDA graphs
(``auto+graphs``, ``fused+graphs``: the backend option ``cuda_graphs=True``), and a second ratio
is taken against ``auto+graphs``; the product-state core runs forced as well (``core``,
``core+graphs``: strategy "core"), since its cost model was fitted on a CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.engine.fused import choose_fused
from qllm.engine.graphs import GraphCache
from qllm.engine.kron import kron_stages
from qllm.engine.micro import Layer
from qllm.engine.pauli import pauli_program, takes_features
from qllm.engine.pauli_features import feature_program
from qllm.engine.plan import make_plan
from qllm.engine.product import core_kind, uses_product_core
from qllm.results import machine, versions, write_json

STRATEGIES = ("auto", "fused", "gates", "core", "kron", "pauli")  # core: dense; kron: block by
# block; pauli: the observables as Pauli sums on product states (Heisenberg picture)
DENSE_CORE_MAX = 10


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(step, repeats: int, warmup: int, device: str) -> tuple[float, list[float]]:
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def round_robin_times(steps: dict, repeats: int, warmup: int, device: str) -> dict:
    """Median seconds per named step, timed in turns (a, b, c, a, b, c, ...) so that drift in
    machine load hits every step alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync(device)
            t = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(ts), ts) for name, ts in times.items()}


def make_inputs(n: int, batch: int, spec, device: str, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, n, generator=g) * 3.0).to(device, dtype).requires_grad_(True)
    w = (torch.rand(spec.n_weights, generator=g) * 6.0).to(device, dtype).requires_grad_(True)
    return x, w


def native_step(spec, x, w, strategy: str):
    def step():
        x.grad = w.grad = None
        simulate(spec, x, w, strategy).sum().backward()
    return step


def layer_step(spec, x, w):
    """``QuantumLayer(spec)`` (strategy "auto") with the same weights: what a model calls,
    input checks and the memory guard included."""
    from qllm.quantum_layer import QuantumLayer

    layer = QuantumLayer(spec).to(x.device)
    with torch.no_grad():
        layer.weights.copy_(w)
    xl = x.detach().clone().requires_grad_(True)

    def step():
        xl.grad = layer.weights.grad = None
        layer(xl).sum().backward()
    return step


def graphed_step(spec, x, w, strategy: str):
    graphs = GraphCache()

    def step():
        x.grad = w.grad = None
        graphs.simulate(spec, x, w, strategy).sum().backward()
    return step


def pennylane_step(spec, x, w, device_name: str, diff_method: str):
    import pennylane as qml

    dev = qml.device(device_name, wires=spec.n_qubits)
    qnode = qml.QNode(spec.to_pennylane(), dev, interface="torch", diff_method=diff_method)

    def step():
        x.grad = w.grad = None
        with torch.device(x.device):  # default.qubit makes |0..0> on the default device
            torch.stack(qnode(x, w), -1).sum().backward()
    return step


def aer_forward(spec, x, w):
    from qllm.backends import get_backend

    backend = get_backend("aer")
    xd, wd = x.detach().cpu().double(), w.detach().cpu().double()

    def step():
        backend.expval(spec, xd, wd)
    return step


def time_peer(peer: str, n: int, batch: int, layers: int, repeats: int, device: str, dtype):
    """Median seconds of one step of ``peer`` (run in this process)."""
    spec = build_circuit(n, layers)
    x, w = make_inputs(n, batch, spec, device, dtype)
    if peer == "default.qubit":
        step = pennylane_step(spec, x, w, "default.qubit", "backprop")
    elif peer == "lightning.qubit":
        step = pennylane_step(spec, x.detach().cpu().double().requires_grad_(True),
                              w.detach().cpu().double().requires_grad_(True), "lightning.qubit",
                              "adjoint")
    elif peer == "aer":
        step = aer_forward(spec, x, w)
    else:
        raise ValueError(peer)
    return median_time(step, repeats, 1, device)


def time_peer_in_child(peer: str, n: int, batch: int, layers: int, repeats: int):
    """Run ``time_peer`` in a fresh interpreter (its OpenMP threads stay out of this process)."""
    cmd = [sys.executable, __file__, "--child", peer, "--child-n", str(n), "--batch", str(batch),
           "--layers", str(layers), "--peer-repeats", str(repeats)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if res.returncode != 0:
        return None, res.stderr.strip().splitlines()[-1:] or ["failed"]
    med, times = json.loads(res.stdout.strip().splitlines()[-1])
    return med, times


def time_torchquantum(python: str, n: int, batch: int, layers: int, repeats: int, spec, device,
                      dtype):
    """torchquantum's median step (benchmarks/torchquantum/peer.py under ``python``), and whether
    its values for the first 4 tokens match the native engine's to 1e-4."""
    peer = Path(__file__).parent / "torchquantum" / "peer.py"
    cmd = [python, str(peer), str(n), str(batch), str(layers), str(repeats),
           str(torch.get_num_threads())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if res.returncode != 0:
        return None, (res.stderr.strip().splitlines() or ["failed"])[-1]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    x, w = make_inputs(n, batch, spec, "cpu", torch.float32)
    with torch.no_grad():
        ours = simulate(spec, x[:4], w)
    out["matches_native"] = bool(torch.allclose(torch.tensor(out.pop("check")), ours, atol=1e-4))
    return out, None


def matmul_rate(batch: int, dim: int, device: str, dtype) -> float:
    """Measured FLOP/s of a [B, dim] x [dim, dim] product in the engine's complex dtype."""
    a = torch.randn(batch, dim, dtype=dtype, device=device)
    b = torch.randn(dim, dim, dtype=dtype, device=device)
    med, _ = median_time(lambda: a @ b, 10, 3, device)
    return 8 * batch * dim * dim / med  # complex multiply-add = 8 real FLOPs


def fused_flops(spec, batch: int) -> int:
    """Real FLOPs of the fused path's batch products (forward + two in backward)."""
    plan = make_plan(spec)
    dim = 2**spec.n_qubits
    fixed = sum(1 for seg in plan.segments if not seg.data)
    return 3 * 8 * batch * dim * dim * fixed


def path_flops(spec, batch: int, path: str) -> int:
    """Real FLOPs of a path's batch matrix products, forward and the two of the backward (the
    small products that build matrices are not counted; nor are memory passes). "core": the
    dense weight matrix on the (real) product state; "kron": each block on its state, a real
    block on a complex state's real view; "pauli": C on the a-half rows and the product with
    the b-half rows, or on the feature route T on f_a and the rows against f_b; "gates": each Kronecker block, complex states on
    their interleaved real view (as apply.py runs them); "fused": one dense product per fixed
    segment."""
    plan = make_plan(spec)
    n, amps = plan.n_qubits, batch * 2**plan.n_qubits
    if path == "fused":
        return fused_flops(spec, batch)
    if path == "core":
        return 3 * 2 * amps * 2**(n + 1)  # real [B, 2^n] x realified [2^n, 2^(n+1)]
    if path == "pauli":
        prog = pauli_program(plan)
        if prog is not None and takes_features(plan, batch):
            features = feature_program(plan)
            k, s = features.k, features.s  # T @ f_a, then the rows against f_b
            return 3 * batch * (2 * k * 3**n + (2 * k * 3 ** (n - s) if s < n else 0))
        rows, UA = prog.shape if prog is not None else (0, 0)
        return 3 * batch * (2 * rows * UA + 2 * rows)
    if path == "kron":
        stages, _ = kron_stages(plan)
        cplx = not plan.real
        return sum(3 * (8 if not real else 4 if cplx else 2) * amps * 2**k
                   for kind, layer, real in stages if kind == "layer" for _, k in layer.blocks)
    return sum(3 * (8 if not plan.real else 2) * amps * 2**k for seg in plan.segments
               for m in seg.micros if isinstance(m, Layer) for _, k in m.blocks)


def auto_path(spec, batch: int) -> str:
    """The path strategy "auto" takes: "kron", "pauli" or "core" (the Kronecker, Heisenberg or
    dense product-state core), "fused" or "gates"."""
    plan = make_plan(spec)
    if uses_product_core(plan, batch, "auto"):
        kind = core_kind(plan, batch, "auto")
        return "core" if kind == "dense" else kind
    fixed = [s for s in plan.segments if not s.data]
    return "fused" if fixed and choose_fused(plan.n_qubits, fixed[0], batch, "auto") else "gates"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="n up to 12, B = 16384, 4 layers")
    p.add_argument("--qubits", type=int, nargs="*", help="override the qubit counts")
    p.add_argument("--batch", type=int, help="tokens per step (default 1024, 16384 with --full)")
    p.add_argument("--layers", type=int, help="ansatz layers (default 2, 4 with --full)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=21, help="timed native steps per point")
    p.add_argument("--peer-repeats", type=int, default=3, help="timed peer steps per point")
    p.add_argument("--peer-max-qubits", type=int, default=10,
                   help="skip the PennyLane peers above this many qubits (minutes per step)")
    p.add_argument("--lightning", action="store_true", help="also lightning.qubit (adjoint)")
    p.add_argument("--aer", action="store_true", help="also the aer backend (forward only)")
    p.add_argument("--torchquantum", nargs="?", const=".venv-tq/bin/python", metavar="PYTHON",
                   help="also torchquantum, run by this interpreter (default .venv-tq/bin/python,"
                        " made by `make torchquantum-env`)")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 matrix products on CUDA (faster, ~1e-3 relative error)")
    p.add_argument("--out", default="results/engine_speed.json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    batch = args.batch or (16384 if args.full else 1024)
    layers = args.layers or (4 if args.full else 2)
    dtype = getattr(torch, args.dtype)
    if args.child:
        med, times = time_peer(args.child, args.child_n, batch, layers, args.peer_repeats, "cpu",
                               dtype)
        print(json.dumps([med, times]))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    qubits = args.qubits or ([4, 6, 8, 10, 12] if args.full else [4, 6, 8, 10])
    peers = ["default.qubit"] + (["lightning.qubit"] if args.lightning else [])
    if args.torchquantum:
        if args.device != "cpu":
            p.error("--torchquantum runs on CPU only here (its venv has a CPU torch)")
        peers.append("torchquantum")
    if args.aer:
        try:
            import qllm.backends.aer_backend  # noqa: F401
            peers.append("aer")
        except ImportError:
            print("aer: qllm.backends.aer_backend not available, skipped")
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    rows = []
    print(f"engine_speed: B={batch}, layers={layers}, {args.dtype}, device={args.device}, "
          f"torch threads={torch.get_num_threads()}; forward+backward ms per step (median)")
    for n in qubits:
        spec = build_circuit(n, layers)
        x, w = make_inputs(n, batch, spec, args.device, dtype)
        row = {"n_qubits": n, "native": {}, "peers": {}}
        # the dense core past 10 qubits builds 2^n x 2^n matrices for minutes: not timed there
        variants = {s: native_step(spec, x, w, s) for s in STRATEGIES
                    if (s != "core" or n <= DENSE_CORE_MAX)
                    and (s != "pauli" or pauli_program(make_plan(spec)) is not None)}
        variants["QuantumLayer"] = layer_step(spec, x, w)
        if args.device == "cuda":
            variants.update({f"{s}+graphs": graphed_step(spec, x, w, s)
                             for s in ("auto", "fused", "core", "kron")
                             if s != "core" or n <= DENSE_CORE_MAX})
        timed = round_robin_times(variants, args.repeats, 2, args.device)
        for strategy, (med, times) in timed.items():
            row["native"][strategy] = {"median_s": med, "times_s": times}
        row["auto_path"] = auto_path(spec, batch)
        for peer in peers:
            if n > args.peer_max_qubits:
                row["peers"][peer] = None
                continue
            if peer == "torchquantum":
                res, err = time_torchquantum(args.torchquantum, n, batch, layers, args.repeats,
                                             spec, args.device, dtype)
                row["peers"][peer] = res
                if err:
                    print(f"torchquantum failed at n={n}: {err}")
                continue
            if peer == "default.qubit":
                med, times = time_peer(peer, n, batch, layers, args.peer_repeats, args.device, dtype)
            else:
                med, times = time_peer_in_child(peer, n, batch, layers, args.peer_repeats)
            row["peers"][peer] = None if med is None else {"median_s": med, "times_s": times,
                                                           "forward_only": peer == "aer"}
        if args.device == "cuda":
            t_fused = min(row["native"][s]["median_s"] for s in ("fused", "fused+graphs"))
            row["fused_flop_rate"] = fused_flops(spec, batch) / t_fused
        row["matmul_flop_rate"] = matmul_rate(batch, 2**n, args.device, cdtype)
        row["flop_rates"] = {s: path_flops(spec, batch, s) / row["native"][s]["median_s"]
                             for s in ("fused", "gates", "core", "kron", "pauli")
                             if s in row["native"]}
        rows.append(row)
        print_row(row, peers, args.device == "cuda")
    data = {"benchmark": "engine_speed",
            "config": {"batch": batch, "layers": layers, "qubits": qubits, "dtype": args.dtype,
                       "device": args.device, "tf32": args.tf32, "repeats": args.repeats,
                       "peer_repeats": args.peer_repeats, "circuit": "build_circuit(n, layers)"
                       " = angle encoding + hardware_efficient (RY, RZ, CNOT ring)",
                       "loss": "sum of expectation values; grads for inputs and weights"},
            "versions": versions(), "machine": machine(), "rows": rows}
    print(f"wrote {write_json(args.out, data)}")
    return 0


def print_row(row: dict, peers: list[str], cuda: bool) -> None:
    nat = {s: r["median_s"] * 1e3 for s, r in row["native"].items()}
    parts = [f"n={row['n_qubits']:>2}", " ".join(f"{s} {t:8.2f}" for s, t in nat.items()),
             f"(auto: {row['auto_path']})"]
    for peer in peers:
        r = row["peers"].get(peer)
        if r is None:
            parts.append(f"| {peer}: skipped")
        else:
            ms = r["median_s"] * 1e3
            label = peer + (" fwd only" if r.get("forward_only") else "")
            if r.get("matches_native") is False:
                label += " (VALUES DIFFER)"
            ratio = f"{ms / nat['auto']:6.1f}x"
            if "auto+graphs" in nat:
                best = min(nat, key=nat.get)
                ratio += f" ({ms / nat['auto+graphs']:.1f}x graphed, {ms / nat[best]:.1f}x {best})"
            parts.append(f"| {label} {ms:9.1f} = {ratio}")
    if cuda:
        parts.append(f"| fused {row['fused_flop_rate'] / 1e12:.2f} TFLOP/s of matmul "
                     f"{row['matmul_flop_rate'] / 1e12:.2f}")
    rates = " ".join(f"{s} {r / 1e9:.1f}" for s, r in row["flop_rates"].items())
    parts.append(f"| GFLOP/s {rates} (matmul {row['matmul_flop_rate'] / 1e9:.1f})")
    print("  ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
