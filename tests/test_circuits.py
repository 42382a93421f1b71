"""The circuit zoo: every encoding x ansatz against PennyLane, the templates it reproduces
(StronglyEntanglingLayers, BasicEntanglerLayers, IQPEmbedding), parameter counts, and names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qllm.circuits import ANSATZE, ENCODINGS, build_circuit, register_ansatz
from qllm.circuits.ansatze import hardware_efficient
from qllm.engine import simulate, simulate_state
from qllm.errors import SpecError
from tests.references import pennylane_expval


def _draw(spec, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, spec.n_inputs, generator=g, dtype=torch.float64) * 2 * np.pi,
            torch.rand(spec.n_weights, generator=g, dtype=torch.float64) * 2 * np.pi)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("ansatz", list(ANSATZE))
def test_every_combination_matches_pennylane(encoding, ansatz):
    spec = build_circuit(3, 2, encoding, ansatz, reupload=(ansatz == "sim14"))
    x, w = _draw(spec)
    np.testing.assert_allclose(simulate(spec, x, w).numpy(), pennylane_expval(spec, x, w).numpy(),
                               atol=1e-10)


def _template_state(n, template):
    import pennylane as qml

    @qml.qnode(qml.device("default.qubit", wires=n))
    def circuit():
        template()
        return qml.state()

    return circuit()


def test_strongly_entangling_is_pennylanes_template():
    import pennylane as qml

    n, layers = 4, 3
    ansatz = ANSATZE["strongly_entangling"](n, layers)
    _, w = _draw(ansatz, 1)
    state = simulate_state(ansatz, torch.zeros(1, 0, dtype=torch.float64), w)[0].numpy()
    ref = _template_state(n, lambda: qml.StronglyEntanglingLayers(w.reshape(layers, n, 3).numpy(),
                                                                  wires=range(n)))
    np.testing.assert_allclose(state, ref, atol=1e-10)


@pytest.mark.parametrize("n", [2, 4])
def test_basic_entangler_is_pennylanes_template(n):
    import pennylane as qml

    spec = ANSATZE["basic_entangler"](n, 2)
    _, w = _draw(spec)
    state = simulate_state(spec, torch.zeros(1, 0, dtype=torch.float64), w)[0].numpy()
    ref = _template_state(n, lambda: qml.BasicEntanglerLayers(w.reshape(2, n).numpy(),
                                                              wires=range(n)))
    np.testing.assert_allclose(state, ref, atol=1e-10)


def test_iqp_is_pennylanes_iqp_embedding():
    import pennylane as qml

    spec = ENCODINGS["iqp"](4)
    x, _ = _draw(spec, 1)
    state = simulate_state(spec, x, torch.zeros(0, dtype=torch.float64))[0].numpy()
    ref = _template_state(4, lambda: qml.IQPEmbedding(x[0].numpy(), wires=range(4)))
    np.testing.assert_allclose(state, ref, atol=1e-10)


def test_rbs_pyramid_preserves_hamming_weight():
    n = 5
    spec = ANSATZE["rbs_pyramid"](n, 2)
    assert spec.n_weights == 2 * n * (n - 1) // 2 and spec.is_real
    _, w = _draw(spec)
    from qllm.spec import CircuitSpec, Op

    for q in range(n):  # start in |e_q>, a unary state
        prep = CircuitSpec(n, (Op("X", (q,)),))
        state = simulate_state(prep.compose(spec), torch.zeros(1, 0, dtype=torch.float64), w)[0]
        weights = torch.tensor([k.bit_count() for k in range(2**n)])
        assert float(state[weights != 1].abs().max()) < 1e-12
        assert abs(float(state.norm()) - 1) < 1e-12


@pytest.mark.parametrize("ansatz, count", [
    ("hardware_efficient", lambda n, l: 2 * n * l), ("hardware_efficient_real", lambda n, l: n * l),
    ("strongly_entangling", lambda n, l: 3 * n * l), ("basic_entangler", lambda n, l: n * l),
    ("sim14", lambda n, l: 4 * n * l), ("rbs_pyramid", lambda n, l: n * (n - 1) // 2 * l),
    ("rx_ry_cnot", lambda n, l: 2 * n * l)])
def test_weight_counts(ansatz, count):
    for n, layers in ((3, 1), (5, 2)):
        assert build_circuit(n, layers, ansatz=ansatz).n_weights == count(n, layers)


def test_reupload_repeats_the_encoding():
    plain = build_circuit(3, 3)
    again = build_circuit(3, 3, reupload=True)
    assert plain.n_weights == again.n_weights and plain.n_inputs == again.n_inputs == 3
    def count(s):
        return sum(op.uses_input for op in s.ops)

    assert count(again) == 3 * count(plain)
    assert build_circuit(3, 1, encoding="dense_angle").n_inputs == 6


def test_unknown_names_and_registration():
    with pytest.raises(SpecError, match="unknown encoding 'amplitude'; allowed: angle"):
        build_circuit(3, 1, encoding="amplitude")
    with pytest.raises(SpecError, match="unknown ansatz 'qaoa'; allowed: hardware_efficient"):
        build_circuit(3, 1, ansatz="qaoa")
    with pytest.raises(SpecError, match="n_layers must be an int >= 1"):
        build_circuit(3, 0)
    register_ansatz("ry_cz_test", lambda n, l: hardware_efficient(n, l, ("RY",), "CZ"))
    try:
        spec = build_circuit(3, 2, ansatz="ry_cz_test")
        assert {op.gate for op in spec.ops} == {"RY", "CZ"}
    finally:
        del ANSATZE["ry_cz_test"]
