"""The PennyLane backend against the native engine (values and gradients), and smoke tests of a
qiskit.aer PennyLane device."""

from __future__ import annotations

import pytest
import torch

from qllm import QuantumLayer
from qllm.backends import get_backend
from qllm.circuits import build_circuit
from qllm.errors import BackendError
from qllm.spec import CircuitSpec, Op, w
from tests.random_specs import all_gates_spec


def _pair(spec, seed):
    torch.manual_seed(seed)
    native = QuantumLayer(spec).double()
    penny = QuantumLayer(spec, backend="pennylane:default.qubit").double()
    penny.load_state_dict(native.state_dict())
    return native, penny


@pytest.mark.parametrize("spec", [build_circuit(4, 2), all_gates_spec(2, n_qubits=3),
                                  build_circuit(3, 2, "iqp", "sim14", reupload=True)],
                         ids=["hardware_efficient", "all_gates", "iqp_sim14_reupload"])
def test_values_and_gradients_match_native(spec):
    native, penny = _pair(spec, 0)
    assert penny.backend.name == "pennylane:default.qubit"
    x = torch.rand(5, spec.n_inputs, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = []
    for layer in (native, penny):
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        (out * torch.arange(1.0, out.shape[-1] + 1, dtype=torch.float64)).sum().backward()
        grads.append((out.detach(), xi.grad, layer.weights.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=0)


def test_weights_only_circuit_is_expanded_to_the_batch():
    spec = CircuitSpec(2, (Op("RX", (0,), (w(0),)), Op("CNOT", (0, 1))), n_inputs=3)
    native, penny = _pair(spec, 1)
    x = torch.rand(4, 3, dtype=torch.float64)
    out = penny(x)
    assert out.shape == (4, 2)
    torch.testing.assert_close(out, native(x), atol=1e-10, rtol=0)


def test_stats_count_circuits_and_jobs():
    backend = get_backend("pennylane:default.qubit")
    spec = build_circuit(2, 1)
    backend.expval(spec, torch.rand(6, 2, dtype=torch.float64), torch.rand(spec.n_weights,
                                                                            dtype=torch.float64))
    assert backend.stats.as_dict() == {"circuits": 6, "shots": 0, "jobs": 1}


def test_bad_device_and_options():
    spec = build_circuit(2, 1)
    backend = get_backend("pennylane:no.such.device")
    with pytest.raises(BackendError, match="PennyLane could not create device 'no.such.device'"):
        backend.expval(spec, torch.rand(1, 2), torch.rand(spec.n_weights))
    with pytest.raises(BackendError, match="shots must be None or a positive int"):
        get_backend("pennylane:default.qubit", shots=-5)


def test_shots_give_noisy_estimates_near_exact():
    spec = build_circuit(2, 1)
    exact = QuantumLayer(spec).double()
    shots = QuantumLayer(spec, backend="pennylane:default.qubit", shots=4000,
                         gradient="parameter-shift").double()
    shots.load_state_dict(exact.state_dict())
    x = torch.rand(3, 2, dtype=torch.float64)
    diff = (shots(x) - exact(x)).abs().max()
    assert 0 < diff < 0.1  # 4000 shots: standard error <= 0.016


def test_qiskit_aer_device_smoke():
    import pennylane as qml

    dev = qml.device("qiskit.aer", wires=2)

    @qml.qnode(dev)
    def bell():
        qml.Hadamard(0)
        qml.CNOT([0, 1])
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))

    assert abs(float(bell()) - 1.0) < 1e-6


def test_qiskit_aer_through_the_backend():
    """The plugin has no exact mode: shots=None samples 1024 shots, and the stats say so."""
    spec = build_circuit(2, 1)
    native = QuantumLayer(spec).double()
    aer = QuantumLayer(spec, backend="pennylane:qiskit.aer").double()
    aer.load_state_dict(native.state_dict())
    x = torch.rand(2, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(aer(x), native(x), atol=0.15, rtol=0)  # 1024 shots: 5 sigma
    # the plugin submits one job per circuit (QiskitDevice.execute loops over the tapes)
    assert aer.backend.stats.as_dict() == {"circuits": 2, "shots": 2048, "jobs": 2}


def test_qiskit_remote_takes_a_device_option_named_backend():
    """`backend` is both QuantumLayer's argument and qiskit.remote's device option: the dict
    form carries it, from QuantumLayer and from a model config alike."""
    from qllm.config import ModelConfig, QuantumConfig
    from qllm.model import HybridTransformer

    spec = build_circuit(2, 1)
    exact = QuantumLayer(spec).double()
    layer = QuantumLayer(spec, backend="pennylane:qiskit.remote", shots=4000,
                         diff_method="parameter-shift",
                         backend_options={"backend": "fake_manila", "seed_transpiler": 1}).double()
    with torch.no_grad():
        layer.weights.copy_(exact.weights)
    x = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    out = layer(x)
    assert out.shape == (3, 2)
    # shots (sigma ~ 0.016) plus FakeManila's calibrated noise: close to, not equal to, exact
    assert float((out - exact(x)).abs().max()) < 0.25
    cfg = ModelConfig(input_dim=4, ffn="quantum", n_layer=1, quantum=QuantumConfig(
        n_qubits=2, n_layers=1, backend="pennylane:qiskit.remote",
        backend_options={"backend": "fake_manila", "shots": 100, "diff_method": "parameter-shift"}))
    model = HybridTransformer(cfg)
    assert all(q.backend.name == "pennylane:qiskit.remote" for q in model.quantum_layers())
    with torch.no_grad():
        assert model(torch.rand(1, 2, 4)).shape == (1, 10)
