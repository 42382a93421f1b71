"""Bring your own circuit: turn a PennyLane quantum function into a CircuitSpec.

The quantum function is traced once with probe tensors that require gradients; each recorded gate
angle is then identified by autograd as ``scale * inputs[i]``, ``scale * inputs[i] * inputs[j]``
(IQP-style products), ``scale * weights[j]`` or a constant. Templates (``AngleEmbedding``,
``StronglyEntanglingLayers``, ...) and adjoints are decomposed until every gate is one of qllm's
gate table (``qllm.gates.GATES``). The spec then runs on every qllm backend.

>>> import pennylane as qml
>>> def qfunc(inputs, weights):
...     qml.AngleEmbedding(inputs, wires=range(2), rotation="Y")
...     qml.CNOT(wires=[0, 1])
...     qml.RX(weights[0], wires=1)
...     return [qml.expval(qml.PauliZ(1))]
>>> spec = from_pennylane(qfunc, n_qubits=2, n_inputs=2, n_weights=1)
>>> [op.gate for op in spec.ops], spec.observables
(['RY', 'RY', 'CNOT', 'RX'], ('IZ',))
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

import torch

from qllm.errors import SpecError
from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, Param, const, inp, w
from qllm.validate import is_int

# PennyLane's SingleExcitation(phi) is qllm's RBS(-phi / 2) (see qllm.export); others match 1:1.
_ANGLE_FACTOR = {"RBS": -0.5}
_TOL = 1e-9


def _by_pennylane_name() -> dict[str, str]:
    return {g.pennylane: name for name, g in GATES.items() if g.pennylane}


def _flatten(op, table: dict[str, str], depth: int = 0) -> list:
    """Decompose ``op`` until every gate is in the table."""
    if op.name in table:
        return [op]
    if depth > 20 or not op.has_decomposition:
        raise SpecError(f"PennyLane operation {op.name!r} has no equivalent in qllm's gate table "
                        f"and no decomposition; supported gates: {', '.join(sorted(table))}")
    return [g for sub in op.decomposition() for g in _flatten(sub, table, depth + 1)]


def _nonzero(grad: torch.Tensor | None) -> list[int]:
    if grad is None:
        return []
    return [int(i) for i in torch.nonzero(grad.abs() > _TOL).flatten()]


def _param(angle, x: torch.Tensor, wts: torch.Tensor, where: str) -> Param:
    """Identify one gate angle as a constant, a scaled weight, a scaled input or input product."""
    if not torch.is_tensor(angle):
        return const(float(angle))
    if angle.numel() != 1:
        raise SpecError(f"{where}: angle has shape {tuple(angle.shape)}; the quantum function must "
                        "be traced with one input vector (no batching inside the circuit)")
    if not angle.requires_grad:
        return const(float(angle))
    value = float(angle.detach())
    gx, gw = torch.autograd.grad(angle.reshape(()), (x, wts), retain_graph=True, allow_unused=True)
    ix, iw = _nonzero(gx), _nonzero(gw)
    if not ix and not iw:
        return const(value)
    if iw and not ix and len(iw) == 1:
        j = iw[0]
        scale, source = float(gw[j]), float(wts[j].detach())
        param = w(j, scale)
    elif ix and not iw and len(ix) == 1:
        i = ix[0]
        scale, source = float(gx[i]), float(x[i].detach())
        param = inp(i, scale)
    elif ix and not iw and len(ix) == 2:
        i, j = ix
        source = float(x[i].detach() * x[j].detach())
        scale = float(gx[i]) / float(x[j].detach())
        param = inp((i, j), scale)
    else:
        raise SpecError(f"{where}: the angle combines several sources (inputs {ix}, weights "
                        f"{iw}); qllm supports scale * input, scale * input_i * input_j, "
                        "scale * weight or a constant")
    if abs(scale * source - value) > 1e-7 * max(1.0, abs(value)):
        raise SpecError(f"{where}: the angle is not linear in its source (found {value:.6g}, "
                        f"expected {scale:.6g} * {source:.6g}); precompute nonlinear features "
                        "outside the circuit")
    return param


def _observable(measurement, n_qubits: int) -> str:
    from pennylane.measurements import ExpectationMP

    obs = getattr(measurement, "obs", None)
    rep = getattr(obs, "pauli_rep", None)
    if not isinstance(measurement, ExpectationMP) or rep is None or len(rep) != 1:
        raise SpecError(f"measurement {measurement} is not the expectation value of one Pauli "
                        "string; return [qml.expval(qml.PauliZ(0) @ qml.PauliZ(1)), ...]")
    word, coeff = next(iter(rep.items()))
    if abs(coeff - 1) > _TOL:
        raise SpecError(f"observable {obs} has coefficient {coeff}; use a bare Pauli string")
    bad = [q for q in word if q not in range(n_qubits)]
    if bad:
        raise SpecError(f"observable {obs} acts on wire {bad[0]}; wires must be 0..{n_qubits - 1}")
    return "".join(word.get(q, "I") for q in range(n_qubits))


def from_pennylane(qfunc: Callable, n_qubits: int, n_inputs: int, n_weights: int,
                   name: str = "pennylane", seed: int = 0) -> CircuitSpec:
    """A CircuitSpec equivalent to a PennyLane quantum function.

    Args:
        qfunc: ``qfunc(inputs, weights)`` applying PennyLane gates on wires ``0..n_qubits-1``
            (wire 0 = most significant, as in qllm) and returning expectation values of Pauli
            strings (or nothing: then Z on every qubit). ``inputs`` is a vector ``[n_inputs]``,
            ``weights`` a flat vector ``[n_weights]`` (reshape it inside for templates). A QNode
            is accepted; its device is ignored.
        n_qubits / n_inputs / n_weights: the circuit's widths.
        name: a label for tables.
        seed: seeds the probe values used for tracing.

    Returns:
        CircuitSpec whose angles read ``inputs`` and ``weights`` as the quantum function does.

    Raises:
        SpecError: a gate with no qllm equivalent, an angle that is not a scaled input, input
            product, weight or constant, a wire outside ``0..n_qubits-1``, or a measurement that
            is not a Pauli expectation value.
    """
    import pennylane as qml

    for arg, value in (("n_qubits", n_qubits), ("n_inputs", n_inputs), ("n_weights", n_weights)):
        if not is_int(value) or value < (arg == "n_qubits"):
            raise SpecError(f"{arg} must be a non-negative int (n_qubits >= 1), got {value!r}")
    qfunc = getattr(qfunc, "func", qfunc)  # a QNode: trace its quantum function
    gen = torch.Generator().manual_seed(seed)
    # Probe values in [0.5, 1.5): nonzero, distinct, so linear sources are identifiable.
    x = (torch.rand(n_inputs, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    wts = (torch.rand(n_weights, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    with qml.queuing.AnnotatedQueue() as queue:
        qfunc(x, wts)
    tape = qml.tape.QuantumScript.from_queue(queue)
    table = _by_pennylane_name()
    ops = []
    for top in tape.operations:
        for op in _flatten(top, table):
            gate = table[op.name]
            wires = [int(q) if isinstance(q, Integral) else q for q in op.wires]
            bad = [q for q in wires if not isinstance(q, int) or not 0 <= q < n_qubits]
            if bad:
                raise SpecError(f"{op.name} on wire {bad[0]!r}: wires must be 0..{n_qubits - 1}")
            where = f"{op.name} on wires {wires}"
            params = [_param(a, x, wts, where) for a in op.data]
            factor = _ANGLE_FACTOR.get(gate, 1.0)
            if factor != 1.0:
                params = [const(p.value * factor) if p.kind == "const"
                          else Param(p.kind, p.index, scale=p.scale * factor) for p in params]
            ops.append(Op(gate, tuple(wires), tuple(params)))
    observables = tuple(_observable(m, n_qubits) for m in tape.measurements) or None
    return CircuitSpec(n_qubits, tuple(ops), observables, n_inputs, n_weights, name)


__all__ = ["from_pennylane"]
