"""Circuit compression: pruned, merged and quantized circuits against the unpruned circuit on
PennyLane default.qubit (within the stated bound), transpiled counts against Qiskit's own count,
quantization-aware fine-tuning, checkpoints, and bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pennylane as qml
import pytest
import torch

from qllm.circuits import build_circuit
from qllm.compress import (
    compress_model,
    compress_spec,
    load_compressed,
    model_row,
    prune_spec,
    save_compressed,
)
from qllm.compress.prune import PERIODS, commutes
from qllm.compress.quantize import RoundSTE
from qllm.config import ModelConfig, QuantumConfig
from qllm.errors import ConfigError
from qllm.model import HybridTransformer
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, inp, w


def reference(spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """Expectation values on PennyLane default.qubit: ``[B, n_observables]``."""
    dev = qml.device("default.qubit", wires=spec.n_qubits)
    qnode = qml.QNode(spec.to_pennylane(), dev, interface="torch")
    out = qnode(x.double(), weights.double())
    return torch.stack(list(out), -1).numpy() if isinstance(out, (list, tuple)) else out.numpy()


def native(spec, x, weights) -> np.ndarray:
    layer = QuantumLayer(spec)
    with torch.no_grad():
        layer.weights.copy_(weights)
        return layer(x.double()).numpy()


def trained_like(spec: CircuitSpec, seed: int, near: float) -> torch.Tensor:
    """Weights where about half the angles sit within ``near`` of 0 or of 2π (identities up to a
    phase), the rest anywhere."""
    g = torch.Generator().manual_seed(seed)
    wts = torch.rand(spec.n_weights, generator=g, dtype=torch.float64) * 2 * math.pi
    small = torch.rand(spec.n_weights, generator=g) < 0.5
    offsets = (torch.rand(spec.n_weights, generator=g, dtype=torch.float64) * 2 - 1) * near
    wraps = (torch.rand(spec.n_weights, generator=g) < 0.5).double() * 2 * math.pi
    return torch.where(small, offsets + wraps, wts)


@pytest.mark.parametrize("seed,ansatz,tol", [(0, "hardware_efficient", 0.15),
                                             (1, "basic_entangler", 0.3),
                                             (2, "sim14", 0.1)])
def test_pruned_outputs_within_bound(seed, ansatz, tol):
    spec = build_circuit(4, 3, "angle", ansatz)
    weights = trained_like(spec, seed, tol)
    res = prune_spec(spec, weights, tol)
    assert res.pruned > 0 and res.spec.n_weights < spec.n_weights
    x = torch.rand(32, spec.n_inputs, generator=torch.Generator().manual_seed(seed)) * math.pi
    diff = np.abs(native(res.spec, x, res.weights) - reference(spec, x, weights)).max()
    assert 0 < diff <= res.error_bound + 1e-9
    # the bound is the one stated: 2 * sum of ||R(θ) - I|| <= 2 * sum |θ mod period|
    angles = [a for _, _, a in res.removed]
    assert res.error_bound <= 2 * sum(abs(math.remainder(a, 2 * math.pi)) for a in angles) + 1e-12


def test_merge_and_cancel_are_exact():
    # RZ(w0) ... CZ ... RZ(w1) on qubit 0 merge through CZ (both diagonal); CNOT pairs cancel
    # through an RZ on the control; RX on the CNOT target commutes through it.
    ops = (Op("RY", (0,), (inp(0),)), Op("RY", (1,), (inp(1),)),
           Op("RZ", (0,), (w(0),)), Op("CZ", (0, 1)), Op("RZ", (0,), (w(1, 0.5),)),
           Op("CNOT", (0, 1)), Op("RZ", (0,), (w(2),)), Op("CNOT", (0, 1)),
           Op("RX", (1,), (w(3),)), Op("CNOT", (1, 0)), Op("RX", (1,), (w(4),)),
           Op("RY", (1,), (w(5),)))
    spec = CircuitSpec(2, ops, ("ZI", "IX", "YY"))
    weights = torch.tensor([0.3, 1.1, -0.7, 0.4, 0.9, 0.2], dtype=torch.float64)
    res = prune_spec(spec, weights, tol=None)
    assert res.pruned == 0 and res.cancelled == 2 and res.merged == 2
    assert len(res.spec.ops) == len(ops) - 4
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(native(res.spec, x, res.weights), reference(spec, x, weights),
                               atol=1e-10)
    assert res.error_bound == 0.0


def test_commutation_rules_match_qiskit_operators():
    from qiskit.quantum_info import Operator

    pairs = [("RZ", (0,), "CNOT", (0, 1)), ("RX", (1,), "CNOT", (0, 1)),
             ("RX", (0,), "CNOT", (0, 1)), ("RZ", (1,), "CZ", (0, 1)), ("RY", (0,), "CZ", (0, 1)),
             ("RZZ", (0, 1), "RZ", (1,)), ("RXX", (0, 1), "RZ", (0,))]
    for g1, w1, g2, w2 in pairs:
        a = CircuitSpec(2, (Op(g1, w1, (w(0),) * bool(PERIODS.get(g1))),)).to_qiskit()
        b = CircuitSpec(2, (Op(g2, w2, (w(0),) * bool(PERIODS.get(g2))),)).to_qiskit()
        vals = {p: 0.83 for p in a.parameters} | {p: -1.27 for p in b.parameters}
        qa = Operator(a.assign_parameters({p: vals[p] for p in a.parameters}))
        qb = Operator(b.assign_parameters({p: vals[p] for p in b.parameters}))
        qiskit_says = np.allclose((qa @ qb).data, (qb @ qa).data)
        assert commutes(g1, w1, g2, w2) == qiskit_says, (g1, w1, g2, w2)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantized_outputs_within_bound(bits):
    spec = build_circuit(4, 2, "angle", "strongly_entangling")
    weights = torch.rand(spec.n_weights, generator=torch.Generator().manual_seed(bits),
                         dtype=torch.float64) * 4 * math.pi - 2 * math.pi
    res = compress_spec(spec, weights, bits=bits)
    step = 2 * math.pi / 2 ** bits
    grid = res.weights / step
    assert torch.allclose(grid, grid.round(), atol=1e-9)
    x = torch.rand(32, spec.n_inputs, generator=torch.Generator().manual_seed(9)) * math.pi
    diff = np.abs(native(res.spec, x, res.weights) - reference(spec, x, weights)).max()
    assert diff <= res.error_bound + 1e-9
    # each angle moves by at most half a step, so the bound is at most 2 * (#angles) * step / 2
    assert res.error_bound <= 2 * spec.n_weights * step / 2 + 1e-9


def test_round_ste_passes_gradient_through():
    x = torch.tensor([0.1, 0.74, -2.0], requires_grad=True)
    y = RoundSTE.apply(x, torch.tensor(0.5))
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.5, -2.0]))
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 2.0, 3.0]))


def small_model(seed=0):
    torch.manual_seed(seed)
    return HybridTransformer(ModelConfig(input_dim=4, n_classes=10, ffn="quantum", n_embd=16,
                                         n_head=2, quantum=QuantumConfig(n_qubits=4)))


def test_report_counts_equal_qiskit_count_of_compressed_circuit():
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    from qllm.data import load_task

    task = load_task("digits")
    task.x_test, task.y_test = task.x_test[:16], task.y_test[:16]
    model = small_model()
    small, results = compress_model(model, tol=1.0, bits=3)
    row = model_row(small, task, target="ibm_torino", shots=100, batch_size=32)
    backend = FakeTorino()
    n1 = n2 = 0
    for layer in small.quantum_layers():
        qc = transpile(layer.spec.to_qiskit(), backend=backend, optimization_level=1,
                       seed_transpiler=7)
        for inst in qc.data:
            if inst.operation.name in ("measure", "barrier", "delay", "reset"):
                continue
            n1 += inst.operation.num_qubits == 1
            n2 += inst.operation.num_qubits == 2
    assert (row["transpiled_n_1q"], row["transpiled_n_2q"]) == (n1, n2)
    before = model_row(model, task, target="ibm_torino", shots=100, batch_size=32)
    assert row["transpiled_n_1q"] < before["transpiled_n_1q"]
    assert row["train_step_executions"] < before["train_step_executions"]  # fewer shifted weights
    assert row["weights"] == sum(r.spec.n_weights for r in results.values())


def test_qat_trains_on_the_grid_and_checkpoint_round_trips(tmp_path):
    from qllm.data import load_task

    task = load_task("digits")
    model = small_model(1)
    small, _ = compress_model(model, tol=0.2, bits=3, qat_steps=4, task=task, seed=0)
    step = 2 * math.pi / 8
    for layer in small.quantum_layers():
        g = layer.weights.detach().double() / step
        assert torch.allclose(g, g.round(), atol=1e-5)
        assert not hasattr(layer, "parametrizations")
    # fine-tuning moved the classical weights too
    assert not torch.equal(small.head.weight, model.head.weight)
    save_compressed(tmp_path / "c.pt", small, {"task": "digits"}, {"bits": 3})
    loaded, train_cfg = load_compressed(tmp_path / "c.pt")
    x = task.x_test[:8]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), small(x))
    assert train_cfg.task == "digits"


def test_bad_input_names_the_argument():
    spec = build_circuit(2, 1)
    wts = torch.zeros(spec.n_weights)
    for tol in (-0.1, 3.5, float("nan"), "0.1"):
        with pytest.raises(ConfigError, match="tolerance"):
            compress_spec(spec, wts, tol=tol)
    for bits in (0, 17, 2.0, True):
        with pytest.raises(ConfigError, match="bits"):
            compress_spec(spec, wts, bits=bits)
    classical = HybridTransformer(ModelConfig(input_dim=4, n_classes=2))
    with pytest.raises(ConfigError, match="no quantum layers"):
        compress_model(classical, tol=0.1)
    with pytest.raises(ConfigError, match="qat_steps"):
        compress_model(small_model(), bits=3, qat_steps=2)


def test_cli_compress(tmp_path):
    from qllm.config import TrainConfig
    from qllm.train import train

    cfg = ModelConfig(input_dim=4, ffn="quantum", n_embd=16, n_head=2)
    train(cfg, TrainConfig(task="digits", epochs=1, max_steps=3, progress=False),
          out_dir=tmp_path / "run")
    cmd = [sys.executable, "-m", "qllm.cli", "compress", str(tmp_path / "run" / "checkpoint.pt")]
    ok = subprocess.run(cmd + ["--tol", "0.5", "--bits", "4", "--target", "ibm_manila",
                               "--out", str(tmp_path / "small")], capture_output=True, text=True,
                        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                             "PATH": "/usr/bin:/bin"})
    assert ok.returncode == 0, ok.stderr
    assert "1q/2q gates on ibm_manila" in ok.stdout
    assert (tmp_path / "small" / "checkpoint.pt").exists()
    assert (tmp_path / "small" / "compression.json").exists()
    bad = subprocess.run(cmd + ["--tol", "4", "--out", str(tmp_path / "x")], capture_output=True,
                         text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "tolerance" in bad.stderr
    train(ModelConfig(input_dim=4, n_embd=16, n_head=2),
          TrainConfig(task="digits", epochs=1, max_steps=1, progress=False),
          out_dir=tmp_path / "classical")
    bad = subprocess.run([*cmd[:4], str(tmp_path / "classical" / "checkpoint.pt"), "--tol", "0.1",
                          "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert bad.returncode == 2 and "no quantum layers" in bad.stderr


def test_compression_preset_writes_table_json_and_figures(tmp_path, monkeypatch):
    import json

    from qllm.experiments import bench, compression

    points = compression.run(tmp_path, progress=False, smoke=True)
    out = tmp_path / "compression"
    data = json.loads((out / "sweep.json").read_text())
    assert len(points) == len(compression.SMOKE_GRID) == len(data["points"])
    assert data["seed"] == 0 and data["versions"]["qiskit"] and data["report"]["target"]
    assert (out / "figures" / "compression.pdf").exists()
    assert (out / "figures" / "compression.png").exists()
    assert (out / "sweep.md").read_text().count("\n") == len(points) + 3
    # `qllm bench --preset compression` hands over to this module
    monkeypatch.setattr(compression, "run", lambda out_dir, progress: ("ran", out_dir))
    assert bench.run_preset("compression", out_dir=tmp_path) == ("ran", tmp_path)
