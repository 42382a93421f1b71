"""from_pennylane: the imported spec must give what PennyLane's default.qubit gives for the original
quantum function, and zoo circuits must survive the round trip spec -> PennyLane -> spec."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch

from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.errors import SpecError
from qllm.importers import from_pennylane


def reference(qfunc, n_qubits, x, wts):
    """Expectation values ``[B, n_obs]`` from default.qubit, one sample at a time."""
    qnode = qml.QNode(qfunc, qml.device("default.qubit", wires=n_qubits), interface="torch")
    return torch.stack([torch.stack(list(qnode(xi, wts))) for xi in x])


def templates_qfunc(inputs, weights):
    qml.AngleEmbedding(inputs[:3], wires=range(3), rotation="Y")
    qml.StronglyEntanglingLayers(weights[:18].reshape(2, 3, 3), wires=range(3))
    qml.IsingZZ(inputs[0] * inputs[1], wires=[0, 2])  # an input product, as IQP encodings use
    qml.adjoint(qml.CRX)(2.0 * weights[18], wires=[2, 1])  # adjoint: angle -2 * w
    qml.SingleExcitation(weights[19], wires=[0, 1])  # qllm's RBS with angle -w/2
    qml.PhaseShift(0.3, wires=1)  # a constant
    qml.Hadamard(wires=2)
    return [qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliX(1) @ qml.PauliY(2)),
            qml.expval(qml.PauliZ(2))]


def test_templates_match_default_qubit():
    spec = from_pennylane(templates_qfunc, n_qubits=3, n_inputs=3, n_weights=20)
    assert spec.observables == ("ZII", "IXY", "IIZ")
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(5, 3, generator=gen, dtype=torch.float64) * 3
    wts = torch.rand(20, generator=gen, dtype=torch.float64) * 6
    ours = simulate(spec, x, wts)
    ref = reference(templates_qfunc, 3, x, wts)
    assert torch.allclose(ours, ref, atol=1e-10), (ours - ref).abs().max()


@pytest.mark.parametrize("encoding,ansatz", [("angle", "hardware_efficient"), ("iqp", "sim14"),
                                             ("dense_angle", "strongly_entangling"),
                                             ("angle_rx", "rbs_pyramid")])
def test_zoo_round_trip(encoding, ansatz):
    spec = build_circuit(3, 2, encoding, ansatz, observables=("ZII", "IZZ", "XIX"))
    back = from_pennylane(spec.to_pennylane(), 3, spec.n_inputs, spec.n_weights)
    assert [(op.gate, op.wires) for op in back.ops] == [(op.gate, op.wires) for op in spec.ops]
    assert back.observables == spec.observables
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(4, spec.n_inputs, generator=gen, dtype=torch.float64) * 3
    wts = torch.rand(spec.n_weights, generator=gen, dtype=torch.float64) * 6
    assert torch.allclose(simulate(back, x, wts), simulate(spec, x, wts), atol=1e-12)


def test_qnode_and_default_observables():
    @qml.qnode(qml.device("default.qubit", wires=2))
    def circuit(inputs, weights):
        qml.RX(inputs[0], wires=0)
        qml.CNOT(wires=[0, 1])
        qml.RY(weights[0], wires=1)

    spec = from_pennylane(circuit, n_qubits=2, n_inputs=1, n_weights=1)
    assert spec.observables == ("ZI", "IZ")
    x = torch.tensor([[0.7]], dtype=torch.float64)
    wts = torch.tensor([0.4], dtype=torch.float64)
    # <Z0> = cos(x); <Z1> = cos(x) cos(w): the CNOT copies Z0's statistics, then RY(w) on qubit 1
    c = torch.cos(torch.tensor(0.7, dtype=torch.float64))
    expected = torch.stack([c, c * torch.cos(torch.tensor(0.4, dtype=torch.float64))])[None]
    assert torch.allclose(simulate(spec, x, wts), expected, atol=1e-12)


def nonlinear(inputs, weights):
    qml.RY(torch.sin(inputs[0]), wires=0)
    return [qml.expval(qml.PauliZ(0))]


def mixed(inputs, weights):
    qml.RY(inputs[0] + weights[0], wires=0)
    return [qml.expval(qml.PauliZ(0))]


def numpy_wires(inputs, weights):
    for q in np.arange(2):  # numpy integer wire labels are fine
        qml.RY(inputs[0], wires=q)
    return [qml.expval(qml.PauliZ(1))]


def wire_out_of_range(inputs, weights):
    qml.RY(inputs[0], wires=3)


def hermitian(inputs, weights):
    qml.RY(inputs[0], wires=0)
    return [qml.expval(qml.Hermitian(torch.eye(2), wires=0))]


class Mystery(qml.operation.Operation):
    """A gate with no matrix in qllm's table and no decomposition."""

    num_wires = 1


def unknown_gate(inputs, weights):
    Mystery(wires=0)


@pytest.mark.parametrize("qfunc,match", [(nonlinear, "not linear"), (mixed, "several sources"),
                                         (wire_out_of_range, "wires must be 0..1"),
                                         (hermitian, "Pauli string"),
                                         (unknown_gate, "Mystery")])
def test_unsupported_circuits_fail_clearly(qfunc, match):
    with pytest.raises(SpecError, match=match):
        from_pennylane(qfunc, n_qubits=2, n_inputs=1, n_weights=1)


def test_numpy_wire_labels():
    spec = from_pennylane(numpy_wires, n_qubits=2, n_inputs=1, n_weights=0)
    assert [op.wires for op in spec.ops] == [(0,), (1,)]


def test_bad_widths():
    with pytest.raises(SpecError, match="n_qubits"):
        from_pennylane(nonlinear, n_qubits=0, n_inputs=1, n_weights=0)
