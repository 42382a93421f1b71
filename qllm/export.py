"""Export a CircuitSpec to PennyLane and Qiskit. Both packages are imported lazily."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from qllm.gates import gate

if TYPE_CHECKING:  # spec.py imports this module lazily; hints only, so no import cycle
    from qllm.spec import CircuitSpec, Param


def pauli_observable(label: str):
    """A PennyLane observable for a Pauli string (character i acts on wire i)."""
    import pennylane as qml

    ops = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
    terms = [ops[c](q) for q, c in enumerate(label) if c != "I"]
    if not terms:
        return qml.Identity(0)
    return terms[0] if len(terms) == 1 else qml.prod(*terms)


def to_pennylane(spec: CircuitSpec):
    import pennylane as qml

    def qfunc(inputs, weights):
        for op in spec.ops:
            g = gate(op.gate)
            qml_op = getattr(qml, g.pennylane)
            angles = spec.op_angles(op, inputs, weights)
            args = [angles[..., i] for i in range(g.n_params)]
            if op.gate == "RBS":
                args = [-2 * args[0]]
            qml_op(*args, wires=list(op.wires))
        return [qml.expval(pauli_observable(o)) for o in spec.observables]

    return qfunc


def _qiskit_angle(p: Param, x, theta):
    if p.kind == "const":
        return p.value
    if p.kind == "weight":
        a = theta[p.indices[0]]
    else:
        a = x[p.indices[0]]
        for i in p.indices[1:]:
            a = a * x[i]
    return a * p.scale if p.scale != 1.0 else a


def to_qiskit(spec: CircuitSpec):
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.circuit.library import XXPlusYYGate

    qc = QuantumCircuit(spec.n_qubits, name=spec.name or "qllm")
    x = ParameterVector("x", spec.n_inputs)
    theta = ParameterVector("θ", spec.n_weights)
    for op in spec.ops:
        g = gate(op.gate)
        a = [_qiskit_angle(p, x, theta) for p in op.params]
        q = list(op.wires)
        if op.gate == "Rot":  # Rot(phi, theta, omega) = exp(-i(phi+omega)/2) U(theta, omega, phi)
            qc.u(a[1], a[2], a[0], q[0])
            qc.global_phase = qc.global_phase - (a[0] + a[2]) / 2
        elif op.gate == "RBS":
            qc.append(XXPlusYYGate(2 * a[0], math.pi / 2), q)
        else:
            getattr(qc, g.qiskit)(*a, *q)
    return qc
