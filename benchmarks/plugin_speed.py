"""A user's unchanged PennyLane and Qiskit code on its usual simulator and on qllm's engine.

1. A TorchLayer model (AngleEmbedding, StronglyEntanglingLayers, Z on every wire; one broadcast
   QNode call per batch): forward + backward on ``default.qubit`` against ``qllm.torch``, the
   same QNode function, only the device name changed.
2. An EstimatorQNN (zz_feature_map + real_amplitudes, parameter-shift gradients of inputs and
   weights): forward + backward with ``StatevectorEstimator`` against ``qllm.qiskit.Estimator``.

Peers run interleaved, best of ``--repeats``; each pair's outputs are compared in the same run.

    python benchmarks/plugin_speed.py                 # writes results/plugin_speed.json
    python benchmarks/plugin_speed.py --batch 256 --repeats 2 --out /tmp/plugin.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from qllm.results import machine, versions, write_json


def torch_layer(device: str, n: int, layers: int):
    import pennylane as qml

    @qml.qnode(qml.device(device, wires=n), interface="torch")
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n))
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    return qml.qnn.TorchLayer(circuit, {"weights": (layers, n, 3)})


def estimator_qnn(estimator, n: int, reps: int):
    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    fm, ansatz = zz_feature_map(n), real_amplitudes(n, reps=reps)
    return EstimatorQNN(circuit=fm.compose(ansatz), input_params=fm.parameters,
                        weight_params=ansatz.parameters, estimator=estimator,
                        gradient=ParamShiftEstimatorGradient(estimator), default_precision=0.0,
                        input_gradients=True)


def time_pair(step_a, step_b, repeats: int, label: str) -> tuple[float, float]:
    """Best times of two steps, run alternately (a busy machine slows both alike)."""
    ta, tb = [], []
    for _ in tqdm(range(repeats), desc=label, leave=False):
        for step, times in ((step_a, ta), (step_b, tb)):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    return min(ta), min(tb)


def bench_torch_layer(args) -> dict:
    torch.manual_seed(args.seed)
    ref, ours = (torch_layer(d, args.n_qubits, args.layers) for d in ("default.qubit", "qllm.torch"))
    ours.load_state_dict(ref.state_dict())
    x = torch.rand(args.batch, args.n_qubits, dtype=torch.float64) * np.pi

    def step(layer):
        def run():
            layer.zero_grad()
            out = layer(x)
            out.sum().backward()
            return out
        return run

    diff = float((step(ref)() - step(ours)()).abs().max())
    t_ref, t_ours = time_pair(step(ref), step(ours), args.repeats, "TorchLayer")
    return {"n_qubits": args.n_qubits, "layers": args.layers, "batch": args.batch,
            "default.qubit_s": t_ref, "qllm.torch_s": t_ours, "speedup": t_ref / t_ours,
            "max_abs_diff": diff}


def bench_estimator_qnn(args) -> dict:
    from qiskit.primitives import StatevectorEstimator

    import qllm.qiskit

    ref = estimator_qnn(StatevectorEstimator(), args.qnn_qubits, args.qnn_reps)
    ours = estimator_qnn(qllm.qiskit.Estimator(), args.qnn_qubits, args.qnn_reps)
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(0, 1, (args.qnn_batch, args.qnn_qubits))
    w = rng.uniform(0, 2 * np.pi, ours.num_weights)

    def step(qnn):
        return lambda: (qnn.forward(x, w), *qnn.backward(x, w))

    diff = max(float(np.abs(a - b).max()) for a, b in zip(step(ref)(), step(ours)()))
    t_ref, t_ours = time_pair(step(ref), step(ours), args.qnn_repeats, "EstimatorQNN")
    return {"n_qubits": args.qnn_qubits, "reps": args.qnn_reps, "batch": args.qnn_batch,
            "parameters": ours.num_inputs + ours.num_weights,
            "StatevectorEstimator_s": t_ref, "qllm.qiskit.Estimator_s": t_ours,
            "speedup": t_ref / t_ours, "max_abs_diff": diff}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-qubits", type=int, default=8)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--qnn-qubits", type=int, default=4)
    p.add_argument("--qnn-reps", type=int, default=2)
    p.add_argument("--qnn-batch", type=int, default=32)
    p.add_argument("--qnn-repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/plugin_speed.json")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    layer, qnn = bench_torch_layer(args), bench_estimator_qnn(args)
    rows = [(f"TorchLayer n={layer['n_qubits']} L={layer['layers']} B={layer['batch']}, fwd+bwd",
             "default.qubit", layer["default.qubit_s"], "qllm.torch", layer["qllm.torch_s"],
             layer["speedup"], layer["max_abs_diff"]),
            (f"EstimatorQNN n={qnn['n_qubits']} reps={qnn['reps']} B={qnn['batch']}, fwd+bwd",
             "StatevectorEstimator", qnn["StatevectorEstimator_s"], "qllm.qiskit.Estimator",
             qnn["qllm.qiskit.Estimator_s"], qnn["speedup"], qnn["max_abs_diff"])]
    print("| workload | peer | peer s | qllm | qllm s | speedup | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]} | {r[4]:.4f} | {r[5]:.1f}x | {r[6]:.1e} |")
    result = {"config": vars(args), "seed": args.seed, "torch_layer": layer,
              "estimator_qnn": qnn, "versions": versions(), "machine": machine(),
              "cost": {"wall_s": time.perf_counter() - t0}}
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
