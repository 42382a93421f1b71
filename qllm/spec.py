"""CircuitSpec: a frozen, validated description of a variational circuit.

A spec is data: qubits, an ordered tuple of ops (gate name, qubits, parameter sources) and Pauli
observables. Every backend takes the same spec, and it exports to PennyLane and Qiskit.

>>> from qllm.spec import CircuitSpec, Op, inp, w
>>> spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CNOT", (0, 1)), Op("RX", (1,), (w(0),))))
>>> spec.n_inputs, spec.n_weights, spec.observables
(1, 1, ('ZI', 'IZ'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from qllm.errors import SpecError
from qllm.gates import gate
from qllm.validate import is_int

PAULI_CHARS = set("IXYZ")


@dataclass(frozen=True)
class Param:
    """Where one gate angle comes from.

    kind: "input" (data feature; ``index`` may be a tuple, whose features are multiplied, as IQP
    encodings need), "weight" (trainable weight ``index``) or "const" (``value``).
    The angle is ``scale * source``.
    """

    kind: str
    index: int | tuple[int, ...] = 0
    value: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        if self.kind not in ("input", "weight", "const"):
            raise SpecError(f"Param kind {self.kind!r} is not one of 'input', 'weight', 'const'")
        if not math.isfinite(self.scale) or not math.isfinite(self.value):
            raise SpecError(f"Param scale and value must be finite, got {self.scale}, {self.value}")
        idx = self.indices
        if self.kind != "const" and (not idx or any(i < 0 for i in idx)):
            raise SpecError(f"Param index must be a non-negative int, got {self.index!r}")
        if self.kind == "weight" and len(idx) != 1:
            raise SpecError("a weight Param takes a single index")

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(self.index) if isinstance(self.index, tuple) else (int(self.index),)


def inp(index: int | tuple[int, ...], scale: float = 1.0) -> Param:
    """Angle from data feature ``index`` (a tuple multiplies features)."""
    return Param("input", index, scale=scale)


def w(index: int, scale: float = 1.0) -> Param:
    """Angle from trainable weight ``index``."""
    return Param("weight", index, scale=scale)


def const(value: float) -> Param:
    return Param("const", value=float(value))


@dataclass(frozen=True)
class Op:
    gate: str
    wires: tuple[int, ...]
    params: tuple[Param, ...] = ()

    def __post_init__(self):
        g = gate(self.gate)
        object.__setattr__(self, "wires", tuple(int(q) for q in self.wires))
        object.__setattr__(self, "params", tuple(self.params))
        if len(self.wires) != g.n_qubits:
            raise SpecError(f"{self.gate} acts on {g.n_qubits} qubit(s), got qubits {self.wires}")
        if len(set(self.wires)) != len(self.wires):
            raise SpecError(f"{self.gate} qubits must be distinct, got {self.wires}")
        if len(self.params) != g.n_params:
            raise SpecError(f"{self.gate} takes {g.n_params} parameter(s), got {len(self.params)}")

    @property
    def uses_input(self) -> bool:
        return any(p.kind == "input" for p in self.params)


def _reweighted(op: Op, index) -> Op:
    """``op`` with each weight parameter's index ``i`` moved to ``index(i)``."""
    return replace(op, params=tuple(replace(p, index=index(p.indices[0])) if p.kind == "weight"
                                    else p for p in op.params))


@dataclass(frozen=True)
class CircuitSpec:
    """A variational circuit.

    Args:
        n_qubits: number of qubits (>= 1).
        ops: ordered ops; qubit 0 is the most significant bit of a basis index (PennyLane order).
        observables: Pauli strings of length ``n_qubits``, character i acting on qubit i.
            Default: Z on each qubit.
        n_inputs / n_weights: widths of the data and weight vectors; default: the largest index
            used plus one.
        name: a label for tables.
    """

    n_qubits: int
    ops: tuple[Op, ...]
    observables: tuple[str, ...] | None = None
    n_inputs: int | None = None
    n_weights: int | None = None
    name: str = field(default="", compare=False)

    def __hash__(self) -> int:
        # Cached: plans, estimates and graph caches look the spec up on every forward call, and
        # hashing all ops costs ~20 us each time. Same fields as the generated hash (no name).
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.n_qubits, self.ops, self.observables, self.n_inputs, self.n_weights))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict:  # str hashes differ between processes: never pickle one
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __post_init__(self):
        if not is_int(self.n_qubits) or self.n_qubits < 1:
            raise SpecError(f"n_qubits must be an int >= 1, got {self.n_qubits!r}")
        ops = tuple(self.ops)
        for op in ops:
            if not isinstance(op, Op):
                raise SpecError(f"ops must be Op instances, got {type(op).__name__}")
            bad = [q for q in op.wires if not 0 <= q < self.n_qubits]
            if bad:
                raise SpecError(f"{op.gate} on qubit {bad[0]}: qubits must lie in 0..{self.n_qubits - 1}")
        object.__setattr__(self, "ops", ops)
        obs = self.observables
        if obs is None:
            obs = tuple("I" * q + "Z" + "I" * (self.n_qubits - q - 1) for q in range(self.n_qubits))
        if isinstance(obs, str):
            obs = (obs,)
        obs = tuple(str(o).upper() for o in obs)
        if not obs:
            raise SpecError("observables must name at least one Pauli string")
        for o in obs:
            if len(o) != self.n_qubits or set(o) - PAULI_CHARS:
                raise SpecError(f"observable {o!r} must be a string of {self.n_qubits} characters "
                                "from I, X, Y, Z")
        object.__setattr__(self, "observables", obs)
        used_in = [i for op in ops for p in op.params if p.kind == "input" for i in p.indices]
        used_w = [i for op in ops for p in op.params if p.kind == "weight" for i in p.indices]
        for attr, used in (("n_inputs", used_in), ("n_weights", used_w)):
            need = max(used, default=-1) + 1
            given = getattr(self, attr)
            if given is None:
                object.__setattr__(self, attr, need)
            elif given < need:
                raise SpecError(f"{attr}={given} but an op uses index {need - 1}")

    # -- structure -------------------------------------------------------------------------
    @property
    def n_observables(self) -> int:
        return len(self.observables)

    @property
    def is_real(self) -> bool:
        """True when every gate is real: the statevector stays real."""
        return all(gate(op.gate).real for op in self.ops)

    def compose(self, other: CircuitSpec, name: str | None = None) -> CircuitSpec:
        """``self`` then ``other`` on the same qubits; ``other``'s weights come after ours and both
        read the same data vector; the observables are ``other``'s."""
        if other.n_qubits != self.n_qubits:
            raise SpecError(f"cannot compose specs on {self.n_qubits} and {other.n_qubits} qubits")
        shift = self.n_weights
        return CircuitSpec(self.n_qubits, self.ops + tuple(_reweighted(op, lambda i: i + shift)
                                                           for op in other.ops),
                           other.observables, max(self.n_inputs, other.n_inputs),
                           self.n_weights + other.n_weights,
                           name or "+".join(s for s in (self.name, other.name) if s))

    def without_entanglement(self) -> CircuitSpec:
        """This circuit with every gate on two or more qubits removed: the state stays a
        product state. The remaining weights are renumbered 0.. in order of first use; the
        data width and observables are unchanged.

        Returns:
            a product-state circuit of the same shape ([..., n_inputs] -> [..., n_observables]).
        """
        kept = [op for op in self.ops if len(op.wires) == 1]
        renumber: dict[int, int] = {}
        for op in kept:
            for p in op.params:
                if p.kind == "weight":
                    renumber.setdefault(p.indices[0], len(renumber))
        return CircuitSpec(self.n_qubits, tuple(_reweighted(op, renumber.__getitem__)
                                                for op in kept),
                           self.observables, self.n_inputs, len(renumber),
                           f"{self.name}-no_entanglement")

    def with_observables(self, observables: Sequence[str]) -> CircuitSpec:
        return replace(self, observables=tuple(observables))

    # -- angles ----------------------------------------------------------------------------
    def op_angles(self, op: Op, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Angles of one op: ``[B, n_params]`` when it reads inputs, else ``[n_params]``."""
        vals = []
        for p in op.params:
            if p.kind == "input":
                a = inputs[..., p.indices[0]]
                for i in p.indices[1:]:
                    a = a * inputs[..., i]
            elif p.kind == "weight":
                a = weights[p.indices[0]]
            else:
                a = torch.tensor(p.value, dtype=weights.dtype, device=weights.device)
            vals.append(a * p.scale if p.scale != 1.0 else a)
        if not vals:
            return weights.new_zeros(0)
        if op.uses_input:
            vals = [v.expand(inputs.shape[:-1]) for v in vals]
        return torch.stack(vals, -1)

    # -- exports ---------------------------------------------------------------------------
    def to_pennylane(self):
        """A PennyLane quantum function ``qfunc(inputs, weights)`` returning expectation values.

        ``inputs`` may be ``[n_inputs]`` or ``[B, n_inputs]`` (parameter broadcasting).
        """
        from qllm.export import to_pennylane

        return to_pennylane(self)

    def to_qiskit(self):
        """A Qiskit ``QuantumCircuit`` with ``ParameterVector``s ``x`` (inputs) and ``θ`` (weights).

        Qiskit orders qubits little-endian; qubit i of the spec is Qiskit qubit i, so statevectors
        compare after reversing qubit order. Observables: ``spec.qiskit_observables()``.
        """
        from qllm.export import to_qiskit

        return to_qiskit(self)

    def qiskit_observables(self):
        from qiskit.quantum_info import SparsePauliOp

        return [SparsePauliOp(o[::-1]) for o in self.observables]
