"""The circuit controls: ``no_entanglement`` leaves a product state (every one-qubit reduced state
pure, by qiskit.quantum_info) of the same shape and the native engine simulates it as
qiskit.quantum_info does; ``bottleneck`` maps have the circuit's shape, bounded outputs and no
more parameters than the circuit; the control models' parameter counts."""

import numpy as np
import pytest
import torch

from qllm.config import ModelConfig, QuantumConfig
from qllm.errors import ConfigError
from qllm.experiments.baselines import param_count, task_fields
from qllm.experiments.controls import (
    bottleneck_control,
    controls_for,
    no_entanglement_control,
)
from qllm.layers.bottleneck import BottleneckMap, bottleneck_for
from qllm.model import HybridTransformer
from qllm.quantum_layer import QuantumLayer
from tests.references import qiskit_expval

ANSATZE = ["hardware_efficient", "strongly_entangling", "sim14", "basic_entangler", "rx_ry_cnot"]


def _purities(spec, x, w):
    """Purity of every qubit's reduced state, from qiskit.quantum_info."""
    from qiskit.quantum_info import Statevector, partial_trace

    qc = spec.to_qiskit()
    binding = {p: float(x[p.index]) for p in qc.parameters if p.name.startswith("x[")}
    binding.update({p: float(w[p.index]) for p in qc.parameters if p.name.startswith("θ[")})
    sv = Statevector(qc.assign_parameters(binding))
    n = spec.n_qubits
    return [float(partial_trace(sv, [k for k in range(n) if k != q]).purity().real)
            for q in range(n)]


@pytest.mark.parametrize("ansatz", ANSATZE)
@pytest.mark.parametrize("encoding", ["angle", "iqp"])
def test_no_entanglement_is_a_product_state_of_the_same_shape(ansatz, encoding):
    spec = QuantumConfig(n_qubits=4, ansatz=ansatz, encoding=encoding).build_spec()
    flat = QuantumConfig(n_qubits=4, ansatz=ansatz, encoding=encoding,
                         entangling=False).build_spec()
    assert flat == spec.without_entanglement()
    assert all(len(op.wires) == 1 for op in flat.ops)
    assert (flat.n_inputs, flat.observables) == (spec.n_inputs, spec.observables)
    assert 0 < flat.n_weights <= spec.n_weights
    assert sorted({p.indices[0] for op in flat.ops for p in op.params if p.kind == "weight"}) \
        == list(range(flat.n_weights))  # renumbered without gaps
    rng = np.random.default_rng(0)
    x, w = rng.uniform(0, np.pi, spec.n_inputs), rng.uniform(0, 2 * np.pi, spec.n_weights)
    assert _purities(flat, x, w[:flat.n_weights]) == pytest.approx([1.0] * 4, abs=1e-9)
    assert min(_purities(spec, x, w)) < 0.99  # the original entangles: the check can fail


@pytest.mark.parametrize("ansatz", ANSATZE)
def test_native_engine_runs_the_product_circuit_like_qiskit(ansatz):
    flat = QuantumConfig(n_qubits=5, ansatz=ansatz, entangling=False).build_spec()
    torch.manual_seed(1)
    layer = QuantumLayer(flat).double()
    x = torch.rand(6, flat.n_inputs, dtype=torch.float64) * 3
    ref = qiskit_expval(flat, x, layer.weights)
    np.testing.assert_allclose(layer(x).detach().numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("n", [3, 4, 6, 8])
@pytest.mark.parametrize("ansatz", ANSATZE)
def test_bottleneck_map_has_the_circuit_shape_and_no_more_parameters(n, ansatz):
    qcfg = QuantumConfig(n_qubits=n, ansatz=ansatz)
    spec = qcfg.build_spec()
    m = bottleneck_for(qcfg)
    n_params = sum(p.numel() for p in m.parameters())
    assert 0 < n_params <= spec.n_weights
    # the largest of the shapes (rank r or full matrix, with or without bias) within the budget
    i, o = spec.n_inputs, spec.n_observables
    sizes = [r * (i + o) + b * o for r in range(1, min(i, o)) for b in (0, 1)]
    sizes += [i * o, i * o + o]
    assert n_params == max(s for s in sizes if s <= spec.n_weights)
    torch.manual_seed(0)
    y = m(torch.randn(2, 7, spec.n_inputs) * 10)
    assert y.shape == (2, 7, spec.n_observables) and y.abs().max() <= 1


def test_bottleneck_map_shapes_and_refusal():
    assert sum(p.numel() for p in BottleneckMap(4, 4, 16).parameters()) == 16  # 4x4, no bias
    assert sum(p.numel() for p in BottleneckMap(4, 4, 20).parameters()) == 20  # 4x4 + bias
    low = BottleneckMap(6, 6, 24)  # full 36 does not fit: rank 2, 2 * (6 + 6) = 24
    assert low.rank == 2 and sum(p.numel() for p in low.parameters()) == 24
    with pytest.raises(ConfigError, match="bottleneck"):
        BottleneckMap(4, 4, 7)


FIELDS = task_fields("digits")


@pytest.mark.parametrize("kinds", [{"ffn": "quantum"}, {"attn": "quantum"},
                                   {"attn": "quantum", "ffn": "quantum"},
                                   {"ffn": ["classical", "quantum"]},
                                   {"attn": ["quantum", "classical"], "ffn": "quantum"}])
@pytest.mark.parametrize("ansatz", ["hardware_efficient", "sim14"])
def test_control_models_parameter_counts(kinds, ansatz):
    hybrid = ModelConfig(input_dim=4, quantum=QuantumConfig(ansatz=ansatz), **kinds)
    hybrid = hybrid.override(FIELDS)
    model = HybridTransformer(hybrid)
    total, circuit = model.num_params(), model.num_params(quantum_only=True)
    spec = hybrid.quantum.build_spec()
    n_circuits = circuit // spec.n_weights
    controls = controls_for(hybrid)
    assert set(controls) == {"bottleneck", "no_entanglement"}
    bott = HybridTransformer(controls["bottleneck"])
    map_params = sum(p.numel() for p in bottleneck_for(hybrid.quantum).parameters())
    assert bott.num_params(quantum_only=True) == 0 and not bott.quantum_layers()
    assert bott.num_params() == total - circuit + n_circuits * map_params <= total
    flat = HybridTransformer(controls["no_entanglement"])
    n_flat = spec.without_entanglement().n_weights
    assert flat.num_params() == total - circuit + n_circuits * n_flat <= total
    assert param_count(controls["no_entanglement"]) == flat.num_params()
    for layer in flat.quantum_layers():
        assert all(len(op.wires) == 1 for op in layer.spec.ops)
    torch.manual_seed(0)
    x = torch.rand(2, 16, 4)
    assert bott(x).shape == flat(x).shape == model(x).shape


def test_controls_that_do_not_apply_are_left_out():
    classical = ModelConfig(input_dim=4)
    assert controls_for(classical) == {}
    qsann = ModelConfig(input_dim=4, attn="qsann")
    assert bottleneck_control(qsann) is None and no_entanglement_control(qsann) is not None
