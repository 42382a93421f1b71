"""Static cost of a circuit: qubits, parameters, 1- and 2-qubit gate counts and depths, logical
(read off the spec) and after transpiling the spec's ``to_qiskit()`` circuit onto a named target.

>>> from qllm.circuits import build_circuit
>>> counts = logical_counts(build_circuit(n_qubits=4, n_layers=2))
>>> counts.n_2q, counts.depth_2q
(8, 8)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

from qllm.gates import gate
from qllm.spec import CircuitSpec

# Instructions that are not gates: left out of every count and depth.
NON_GATES = frozenset({"measure", "barrier", "delay", "reset"})


@dataclass(frozen=True)
class GateCounts:
    """Gate counts of one circuit.

    Attributes:
        n_qubits: qubits the circuit touches (after transpiling: physical qubits in use).
        n_1q / n_2q: one- and two-qubit gates (Qiskit's virtual ``rz`` counts as a gate).
        depth: layers of gates on the critical path; depth_2q: the same counting 2-qubit gates only.
        ops: gate name -> count (spec gate names logically, the target's basis names transpiled).
    """

    n_qubits: int
    n_1q: int
    n_2q: int
    depth: int
    depth_2q: int
    ops: dict = field(default_factory=dict, compare=True, hash=False)

    @property
    def n_gates(self) -> int:
        return self.n_1q + self.n_2q

    def to_dict(self) -> dict:
        return asdict(self)


def _depths(gates: list[tuple[int, tuple]]) -> tuple[int, int]:
    """Critical-path depth of ``[(n_qubits, wires), ...]``: all gates, and 2-qubit gates only."""
    level: dict = {}
    level2: dict = {}
    for nq, wires in gates:
        d = 1 + max((level.get(q, 0) for q in wires), default=0)
        d2 = max((level2.get(q, 0) for q in wires), default=0) + (nq == 2)
        for q in wires:
            level[q], level2[q] = d, d2
    return max(level.values(), default=0), max(level2.values(), default=0)


def logical_counts(spec: CircuitSpec) -> GateCounts:
    """Counts of the circuit as written in the spec (one op = one gate; ``Rot`` and ``RBS`` count
    as one gate each, as PennyLane's ``default.qubit`` executes them)."""
    gates = [(gate(op.gate).n_qubits, op.wires) for op in spec.ops]
    depth, depth2 = _depths(gates)
    ops: dict[str, int] = {}
    for op in spec.ops:
        ops[op.gate] = ops.get(op.gate, 0) + 1
    return GateCounts(spec.n_qubits, sum(n == 1 for n, _ in gates), sum(n == 2 for n, _ in gates),
                      depth, depth2, ops)


def circuit_counts(qc) -> GateCounts:
    """Counts of a Qiskit ``QuantumCircuit`` (measurements, barriers, delays and resets skipped)."""
    gates, ops = [], {}
    for inst in qc.data:
        name = inst.operation.name
        if name in NON_GATES:
            continue
        if inst.operation.num_qubits > 2:
            from qllm.errors import SpecError

            raise SpecError(f"cannot count a {inst.operation.num_qubits}-qubit gate {name!r}")
        gates.append((inst.operation.num_qubits, tuple(qc.find_bit(q).index for q in inst.qubits)))
        ops[name] = ops.get(name, 0) + 1
    depth, depth2 = _depths(gates)
    used = {q for _, wires in gates for q in wires}
    return GateCounts(len(used), sum(n == 1 for n, _ in gates), sum(n == 2 for n, _ in gates),
                      depth, depth2, ops)


@lru_cache(maxsize=256)
def transpiled_circuit(spec: CircuitSpec, target: str, optimization_level: int = 1,
                       seed: int = 7):
    """The spec's parametrised Qiskit circuit transpiled onto a named target (cached per spec,
    target, level and seed; ``seed_transpiler`` makes layout and routing reproducible).

    Args:
        spec: the circuit.
        target: a name from ``qllm.cost.targets.TARGETS``.
        optimization_level: Qiskit's preset pass manager level (0-3).
        seed: ``seed_transpiler``.
    Returns:
        a ``QuantumCircuit`` over the target's physical qubits, still parametrised by ``x`` and
        ``θ`` (counts do not depend on the angle values).
    """
    from qiskit import transpile

    from qllm.cost.targets import get_target

    t = get_target(target)
    t.check_fits(spec)
    return transpile(spec.to_qiskit(), optimization_level=optimization_level,
                     seed_transpiler=seed, **t.transpile_kwargs())


def transpiled_counts(spec: CircuitSpec, target: str, optimization_level: int = 1,
                      seed: int = 7) -> GateCounts:
    """``circuit_counts`` of ``transpiled_circuit(spec, target, ...)``."""
    return circuit_counts(transpiled_circuit(spec, target, optimization_level, seed))


def measurement_groups(spec: CircuitSpec) -> int:
    """Number of qubit-wise commuting groups of the observables: the distinct measurement settings
    (circuits per parameter set) hardware needs; 1 for all-Z. The grouping is the samplers' own
    (``qllm.engine.sampling.measurement_groups``), so cost and execution cannot disagree."""
    from qllm.engine.sampling import measurement_groups as groups

    return len(groups(spec.observables))
