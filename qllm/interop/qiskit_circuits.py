"""A parameterised Qiskit circuit as a CircuitSpec whose angles are input columns.

Gates outside qllm's table are transpiled to it first (Qiskit's basis translation, no
optimisation, so parameters keep their meaning). Every gate angle is an affine function of the
circuit's parameters, ``angle = offset + coeffs @ values``, found symbolically with
``ParameterExpression.gradient``; for a batch of parameter sets ``values [N, P]`` all angles are
then one matrix product, ``inputs [N, K]``, and the whole batch is one engine call. An angle
that is not affine (``sin(a)``, ``a * b``) is evaluated per parameter set instead.

Qubit order: qllm's spec qubit i is Qiskit qubit i (``CircuitSpec.to_qiskit``), so a Qiskit Pauli
label, little-endian, reads reversed in qllm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qllm.errors import SpecError
from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, const, inp

QISKIT_TO_QLLM = {g.qiskit: name for name, g in GATES.items() if g.qiskit and g.qiskit != "rot"}
# RBS(theta) = XXPlusYYGate(2 theta, pi/2); other XXPlusYY phases are transpiled away.
_IGNORED = {"barrier", "delay", "id"}


@dataclass
class CircuitProgram:
    """Engine arguments for one circuit and any batch of parameter values.

    Attributes:
        spec: the circuit on ``qc.num_qubits`` qubits (observables set per call).
        parameters: the circuit's parameters, in ``qc.parameters`` order.
        coeffs: ``[K, P]`` and ``offsets [K]``: the K variable angles, affine in the parameters.
        nonlinear: ``{column: ParameterExpression}`` for angles evaluated per parameter set.
    """

    spec: CircuitSpec
    parameters: list
    coeffs: np.ndarray
    offsets: np.ndarray
    nonlinear: dict

    def inputs(self, values: np.ndarray) -> torch.Tensor:
        """Angles ``[N, K]`` (float64) for parameter values ``[N, P]``."""
        cols = values @ self.coeffs.T + self.offsets
        for k, expr in self.nonlinear.items():
            used = [j for j, p in enumerate(self.parameters) if p in expr.parameters]
            cols[:, k] = [float(np.real(complex(expr.bind(
                {self.parameters[j]: row[j] for j in used})))) for row in values]
        return torch.from_numpy(np.ascontiguousarray(cols, dtype=np.float64))


def _to_table(qc):
    from qiskit import transpile

    names = {inst.operation.name for inst in qc.data}
    if names <= set(QISKIT_TO_QLLM) | _IGNORED:
        return qc
    return transpile(qc, basis_gates=sorted(QISKIT_TO_QLLM), optimization_level=0)


def _affine(expr, parameters: list) -> tuple[np.ndarray, float] | None:
    """``(coeffs [P], offset)`` if ``expr`` is affine in the parameters, else None."""
    index = {p: j for j, p in enumerate(parameters)}
    coeffs = np.zeros(len(parameters))
    for p in expr.parameters:
        d = expr.gradient(p)
        if hasattr(d, "parameters") and d.parameters:
            return None
        coeffs[index[p]] = float(np.real(complex(d)))
    offset = expr.bind({p: 0.0 for p in expr.parameters})
    return coeffs, float(np.real(complex(offset)))


def circuit_program(qc) -> CircuitProgram:
    """Convert a Qiskit ``QuantumCircuit`` (final measurements are dropped).

    Raises:
        SpecError: mid-circuit measurements, resets, classical control, or a gate the
            transpiler cannot reach qllm's table with.
    """
    qc = _to_table(qc.remove_final_measurements(inplace=False))
    parameters = list(qc.parameters)
    ops, rows, offsets, nonlinear = [], [], [], {}
    for inst in qc.data:
        name = inst.operation.name
        if name in _IGNORED:
            continue
        if name not in QISKIT_TO_QLLM:
            raise SpecError(f"Qiskit instruction {name!r} cannot run on qllm's engine (only "
                            f"unitary gates; supported: {', '.join(sorted(QISKIT_TO_QLLM))})")
        gate_name = QISKIT_TO_QLLM[name]
        angles = list(inst.operation.params)
        if gate_name == "RBS":
            if abs(float(angles[1]) - np.pi / 2) > 1e-12:
                raise SpecError("xx_plus_yy with beta != pi/2 is outside qllm's table")
            angles = [angles[0] / 2]
        params = []
        for a in angles:
            if not hasattr(a, "parameters") or not a.parameters:
                params.append(const(float(np.real(complex(a)))))
                continue
            k = len(offsets)
            fit = _affine(a, parameters)
            if fit is None:
                nonlinear[k] = a
                fit = (np.zeros(len(parameters)), 0.0)
            rows.append(fit[0])
            offsets.append(fit[1])
            params.append(inp(k))
        ops.append(Op(gate_name, tuple(qc.find_bit(q).index for q in inst.qubits),
                      tuple(params)))
    spec = CircuitSpec(qc.num_qubits, tuple(ops), None, len(offsets), 0, name=qc.name or "qiskit")
    coeffs = np.array(rows).reshape(len(offsets), len(parameters))
    return CircuitProgram(spec, parameters, coeffs, np.array(offsets, dtype=float), nonlinear)
