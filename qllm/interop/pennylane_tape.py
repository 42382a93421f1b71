"""A PennyLane tape, already decomposed to qllm's gate table, as one batched engine call.

Every gate angle of the tape becomes an angle source of a CircuitSpec: an angle that is the same
for the whole broadcast batch is a *weight* (one entry of ``weights [n_weights]``), an angle with a
broadcast dimension is an *input* column (``inputs [B, n_inputs]``). The spec depends only on the
tape's structure (gates, wires, which angles are broadcast), so one cached spec and the engine's
cached plan serve every call of a QNode; autograd flows from the tape's torch parameters through
both tensors into the engine.

Wires: the tape is mapped to standard wires 0..n-1 first; wire 0 is the most significant bit of
the state index, as in PennyLane and in qllm.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, inp, w

# PennyLane name -> qllm gate; SingleExcitation(phi) is qllm's RBS(-phi / 2) (see qllm.export).
PENNYLANE_TO_QLLM = {g.pennylane: name for name, g in GATES.items() if g.pennylane}
_ANGLE_FACTOR = {"RBS": -0.5}
# Operations the device runs without a gate: no effect on the state, or only a global phase.
PASSIVE_OPS = frozenset({"Identity", "Snapshot", "GlobalPhase"})
SUPPORTED_OPS = frozenset(PENNYLANE_TO_QLLM) | PASSIVE_OPS


@dataclass
class TapeProgram:
    """One tape as engine arguments.

    Attributes:
        spec: the circuit (observables are set per call).
        inputs: ``[B, n_inputs]`` broadcast angles (``B = 1`` without broadcasting).
        weights: ``[n_weights]`` angles shared by the batch.
        phase: global phase ``[B]`` (complex) or None, from ``GlobalPhase`` ops.
        batch_size: the tape's broadcast size, or None.
    """

    spec: CircuitSpec
    inputs: torch.Tensor
    weights: torch.Tensor
    phase: torch.Tensor | None
    batch_size: int | None


def _as_tensor(value, dtype: torch.dtype) -> torch.Tensor:
    if torch.is_tensor(value):
        return value.to(dtype)
    import pennylane as qml

    return torch.as_tensor(qml.math.unwrap(value), dtype=dtype)


@lru_cache(maxsize=512)
def _cached_spec(n_qubits: int, layout: tuple, n_inputs: int, n_weights: int) -> CircuitSpec:
    ops = []
    for gate_name, wires, sources in layout:
        factor = _ANGLE_FACTOR.get(gate_name, 1.0)
        params = tuple(inp(i, factor) if kind == "input" else w(i, factor) for kind, i in sources)
        ops.append(Op(gate_name, wires, params))
    return CircuitSpec(n_qubits, tuple(ops), None, n_inputs, n_weights, name="pennylane-tape")


def tape_program(tape, dtype: torch.dtype = torch.float64) -> TapeProgram:
    """Convert a standard-wire tape whose operations are all in ``SUPPORTED_OPS``.

    Args:
        tape: a ``QuantumScript`` on wires ``0..n-1`` (``tape.map_to_standard_wires()``).
        dtype: real dtype of the angles (float64 simulates in complex128).

    Returns:
        TapeProgram; ``spec.n_qubits = max(1, tape.num_wires)``.
    """
    B = tape.batch_size
    inputs, weights, layout, phases = [], [], [], []
    for op in tape.operations:
        if op.name in PASSIVE_OPS:
            if op.name == "GlobalPhase":
                phases.append(_as_tensor(op.data[0], dtype))
            continue
        gate_name = PENNYLANE_TO_QLLM[op.name]
        sources = []
        for value in op.data:
            t = _as_tensor(value, dtype)
            if t.ndim:  # broadcast: one angle per batch element
                sources.append(("input", len(inputs)))
                inputs.append(t)
            else:
                sources.append(("weight", len(weights)))
                weights.append(t)
        layout.append((gate_name, tuple(int(q) for q in op.wires), tuple(sources)))
    n = max(1, tape.num_wires)
    spec = _cached_spec(n, tuple(layout), len(inputs), len(weights))
    rows = B or 1
    x = torch.stack([t.expand(rows) for t in inputs], -1) if inputs else torch.zeros(rows, 0, dtype=dtype)
    wts = torch.stack(weights) if weights else torch.zeros(0, dtype=dtype)
    phase = None
    if phases:
        total = sum(p.expand(rows) for p in phases)
        phase = torch.polar(torch.ones_like(total), -total)  # GlobalPhase(phi) = exp(-i phi) I
    return TapeProgram(spec, x, wts, phase, B)
