"""CircuitSpec: validation errors that name the problem, angle sources, compose, and the exports'
qubit order and observables (values checked against PennyLane and Qiskit in test_engine.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qllm.errors import SpecError
from qllm.spec import CircuitSpec, Op, Param, const, inp, w


def test_defaults_and_counts():
    spec = CircuitSpec(3, (Op("RY", (0,), (inp(2),)), Op("CRX", (0, 2), (w(4),))))
    assert spec.n_inputs == 3 and spec.n_weights == 5
    assert spec.observables == ("ZII", "IZI", "IIZ") and spec.n_observables == 3
    assert not spec.is_real  # CRX is complex
    assert CircuitSpec(2, (Op("RY", (0,), (w(0),)), Op("CNOT", (0, 1)))).is_real


@pytest.mark.parametrize("make, match", [
    (lambda: CircuitSpec(0, ()), "n_qubits must be an int >= 1"),
    (lambda: CircuitSpec(2.0, ()), "n_qubits must be an int"),
    (lambda: CircuitSpec(2, (Op("RX", (2,), (w(0),)),)), r"qubit 2: qubits must lie in 0\.\.1"),
    (lambda: CircuitSpec(2, (Op("RX", (-1,), (w(0),)),)), "qubit -1"),
    (lambda: Op("CNOT", (0,)), r"CNOT acts on 2 qubit\(s\)"),
    (lambda: Op("CNOT", (1, 1)), "qubits must be distinct"),
    (lambda: Op("RX", (0,)), r"RX takes 1 parameter\(s\), got 0"),
    (lambda: Op("NOPE", (0,)), "unknown gate 'NOPE'; allowed gates: RX"),
    (lambda: CircuitSpec(2, (), observables=("ZZZ",)), "observable 'ZZZ' must be a string of 2"),
    (lambda: CircuitSpec(2, (), observables=("ZQ",)), "from I, X, Y, Z"),
    (lambda: CircuitSpec(2, (), observables=()), "at least one Pauli string"),
    (lambda: CircuitSpec(1, (Op("RX", (0,), (inp(3),)),), n_inputs=2), "n_inputs=2 but an op uses index 3"),
    (lambda: CircuitSpec(1, (Op("RX", (0,), (w(3),)),), n_weights=1), "n_weights=1"),
    (lambda: CircuitSpec(1, ("RX",)), "ops must be Op instances"),
    (lambda: Param("bias"), "Param kind 'bias'"),
    (lambda: inp(-1), "non-negative int"),
    (lambda: w(0, scale=float("nan")), "finite"),
    (lambda: Param("weight", (0, 1)), "single index"),
])
def test_malformed_specs_fail_clearly(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_observables_are_normalised():
    spec = CircuitSpec(2, (), observables="xz")
    assert spec.observables == ("XZ",)


def test_op_angles_sources_products_and_scales():
    spec = CircuitSpec(2, (Op("Rot", (0,), (inp((0, 1), 0.5), w(1, -2.0), const(0.25))),))
    x = torch.tensor([[2.0, 3.0], [1.0, -1.0]], dtype=torch.float64)
    wts = torch.tensor([9.0, 0.5], dtype=torch.float64)
    a = spec.op_angles(spec.ops[0], x, wts)
    torch.testing.assert_close(a, torch.tensor([[3.0, -1.0, 0.25], [-0.5, -1.0, 0.25]],
                                               dtype=torch.float64))
    fixed = CircuitSpec(1, (Op("RY", (0,), (w(0, 2.0),)),))
    assert fixed.op_angles(fixed.ops[0], x, wts).shape == (1,)


def test_compose_shifts_weights_and_keeps_inputs():
    a = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("RX", (1,), (w(0),))), name="a")
    b = CircuitSpec(2, (Op("RZ", (0,), (w(0),)), Op("RY", (1,), (inp(1),))), observables=("XX",),
                    name="b")
    c = a.compose(b)
    assert c.n_weights == 2 and c.n_inputs == 2 and c.observables == ("XX",) and c.name == "a+b"
    assert c.ops[2].params[0] == w(1) and c.ops[3].params[0] == inp(1)
    with pytest.raises(SpecError, match="cannot compose specs on 2 and 3 qubits"):
        a.compose(CircuitSpec(3, ()))


def test_specs_are_hashable_values():
    a = CircuitSpec(2, (Op("CNOT", (0, 1)),), name="x")
    b = CircuitSpec(2, (Op("CNOT", [0, 1]),), name="y")
    assert a == b and hash(a) == hash(b)  # the name is a label, not part of the value


def test_qiskit_export_parameters_and_observables():
    spec = CircuitSpec(3, (Op("RY", (0,), (inp(1),)), Op("CNOT", (0, 2)), Op("RZ", (2,), (w(0),))),
                       observables=("ZIX", "IYI"))
    qc = spec.to_qiskit()
    assert qc.num_qubits == 3
    names = sorted(p.name for p in qc.parameters)
    assert names == ["x[1]", "θ[0]"]
    assert [str(o.paulis[0]) for o in spec.qiskit_observables()] == ["XIZ", "IYI"]


def test_pennylane_export_broadcasts_inputs():
    import pennylane as qml

    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CNOT", (0, 1))), observables=("IZ",))
    qnode = qml.QNode(spec.to_pennylane(), qml.device("default.qubit", wires=2), interface="torch")
    x = torch.tensor([[0.0], [np.pi]], dtype=torch.float64)
    out = qnode(x, torch.zeros(0, dtype=torch.float64))
    np.testing.assert_allclose(out[0].numpy(), [1.0, -1.0], atol=1e-12)  # one expval, batch 2


def test_without_entanglement_drops_multi_qubit_gates_and_renumbers_weights():
    # weight 3 first, weight 1 only inside a two-qubit gate: kept weights become 0, 1 in order
    spec = CircuitSpec(2, (Op("RY", (0,), (inp(1),)), Op("RZ", (1,), (w(3),)),
                           Op("CRX", (0, 1), (w(1),)), Op("CNOT", (1, 0)),
                           Op("RX", (0,), (w(0),)), Op("RZ", (0,), (w(3),))),
                       ("ZI", "XZ"), name="toy")
    flat = spec.without_entanglement()
    want = CircuitSpec(2, (Op("RY", (0,), (inp(1),)), Op("RZ", (1,), (w(0),)),
                           Op("RX", (0,), (w(1),)), Op("RZ", (0,), (w(0),))), ("ZI", "XZ"),
                       n_inputs=spec.n_inputs, n_weights=2, name="toy-no_entanglement")
    assert flat == want and flat.n_weights == 2 and flat.n_inputs == spec.n_inputs == 2
