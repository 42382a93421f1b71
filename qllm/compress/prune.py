"""Gate pruning and merging of a trained circuit.

A trained spec is first put in *canonical form*: every weight-driven angle becomes its own weight
with scale 1 holding the trained angle, so pruning and merging only edit a list of ops with known
angles. Then, until nothing changes:

1. prune: a rotation whose angle is within ``tol`` of the identity modulo the gate's period
   (2π for Pauli rotations, which is the identity up to a global phase, ``PhaseShift`` and
   ``RBS``; 4π for controlled rotations) is removed;
2. merge: a rotation moved back past the ops it commutes with onto an earlier rotation of the same
   gate on the same qubits becomes one rotation of the summed angle; two self-inverse gates (CNOT,
   CZ, SWAP, H, X, Y, Z) that meet this way cancel.

Merging and cancelling are exact. Pruning a gate G(θ) changes the state by at most
``||G(θ') - I||`` (θ' the angle reduced into the period's centred window), and each Pauli
expectation value by at most twice the sum of those norms over the pruned gates:
``|<O> - <O>'| <= 2 ||ψ - ψ'|| <= 2 Σ ||G_i(θ'_i) - I||`` (``error_bound`` in the result).

>>> from qllm.circuits import build_circuit
>>> import torch
>>> spec = build_circuit(n_qubits=2, n_layers=1)
>>> res = prune_spec(spec, torch.zeros(spec.n_weights), tol=0.1)
>>> res.spec.n_weights, res.error_bound
(0, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from qllm.errors import ConfigError
from qllm.gates import gate
from qllm.spec import CircuitSpec, Op, Param, const, w
from qllm.validate import is_real

# Single-angle gates whose angles add when two of them meet: gate -> period of the angle (up to
# a global phase, which no expectation value sees).
PERIODS = {"RX": 2 * math.pi, "RY": 2 * math.pi, "RZ": 2 * math.pi, "PhaseShift": 2 * math.pi,
           "RXX": 2 * math.pi, "RYY": 2 * math.pi, "RZZ": 2 * math.pi, "RBS": 2 * math.pi,
           "CRX": 4 * math.pi, "CRY": 4 * math.pi, "CRZ": 4 * math.pi}
# Every angle of the three-angle gates has period 2π up to a global phase.
MULTI_PERIODS = {"Rot": 2 * math.pi, "U3": 2 * math.pi}
SELF_INVERSE = frozenset({"CNOT", "CZ", "SWAP", "H", "X", "Y", "Z"})
SYMMETRIC = frozenset({"CZ", "SWAP", "RXX", "RYY", "RZZ"})  # same gate on (a, b) and (b, a)


@dataclass
class WorkOp:
    """An op under edit: ``angles[i]`` is the trained angle of parameter i, or None where the
    parameter reads the data (``params[i]`` keeps its Param)."""

    gate: str
    wires: tuple[int, ...]
    params: tuple[Param, ...]
    angles: list  # float or None per parameter
    trainable: list  # per parameter: a weight (True) or a constant (False)

    @property
    def fixed(self) -> bool:
        return all(a is not None for a in self.angles)


@dataclass
class PruneResult:
    """A compressed circuit and what it cost.

    Attributes:
        spec: the new spec (weights re-indexed 0..n-1, each with scale 1).
        weights: its weights ``[spec.n_weights]`` (the angles).
        pruned: gates removed as near-identity; merged: rotation pairs merged into one;
            cancelled: self-inverse gates removed in pairs.
        error_bound: bound on the change of every Pauli expectation value, 2 Σ ||G_i - I||.
    """

    spec: CircuitSpec
    weights: torch.Tensor
    pruned: int = 0
    merged: int = 0
    cancelled: int = 0
    error_bound: float = 0.0
    ops_before: int = 0
    removed: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ops_before": self.ops_before, "ops_after": len(self.spec.ops), "pruned": self.pruned,
                "merged": self.merged, "cancelled": self.cancelled,
                "error_bound": self.error_bound, "n_weights": self.spec.n_weights}


def check_tolerance(tol) -> float:
    """``tol`` in radians: a finite number in [0, π]."""
    if not is_real(tol) or not 0 <= tol <= math.pi:
        raise ConfigError(f"tolerance must be a number of radians in [0, pi], got {tol!r}")
    return float(tol)


def canonical_ops(spec: CircuitSpec, weights: torch.Tensor) -> list[WorkOp]:
    """The spec's ops with every weight- or constant-driven angle read off as a number."""
    if not torch.is_tensor(weights) or weights.shape != (spec.n_weights,):
        raise ConfigError(f"weights must be a tensor of shape ({spec.n_weights},), got "
                          f"{tuple(weights.shape) if torch.is_tensor(weights) else weights!r}")
    vals = weights.detach().double().cpu().tolist()
    out = []
    for op in spec.ops:
        angles, trainable = [], []
        for p in op.params:
            if p.kind == "input":
                angles.append(None)
            elif p.kind == "weight":
                angles.append(vals[p.indices[0]] * p.scale)
            else:
                angles.append(p.value * p.scale)
            trainable.append(p.kind == "weight")
        out.append(WorkOp(op.gate, op.wires, op.params, angles, trainable))
    return out


def emit(ops: list[WorkOp], like: CircuitSpec, dtype=torch.float32) -> tuple[CircuitSpec, torch.Tensor]:
    """A spec and weight vector from canonical ops: one weight per trainable angle, in order."""
    new_ops, values = [], []
    for op in ops:
        params = []
        for p, a, t in zip(op.params, op.angles, op.trainable):
            if a is None:
                params.append(p)
            elif t:
                params.append(w(len(values)))
                values.append(a)
            else:
                params.append(const(a))
        new_ops.append(Op(op.gate, op.wires, tuple(params)))
    spec = CircuitSpec(like.n_qubits, tuple(new_ops), like.observables, like.n_inputs,
                       len(values), like.name)
    return spec, torch.tensor(values, dtype=dtype)


def reduced(angle: float, period: float) -> float:
    """``angle`` moved into the centred window (-period/2, period/2]."""
    r = math.remainder(angle, period)
    return period / 2 if r == -period / 2 else r


def distance_to_identity(name: str, angle: float) -> float:
    """``||G(θ') - I||`` in the operator norm, θ' the angle reduced into its period's window."""
    theta = reduced(angle, PERIODS[name])
    m = gate(name).matrix(torch.tensor([[theta]], dtype=torch.float64))[0]
    eye = torch.eye(m.shape[-1], dtype=m.dtype)
    return float(torch.linalg.matrix_norm(m - eye, ord=2))


def prune_pass(ops: list[WorkOp], tol: float, result: PruneResult) -> list[WorkOp]:
    """Drop fixed single-angle rotations within ``tol`` of the identity (modulo the period)."""
    kept = []
    for op in ops:
        period = PERIODS.get(op.gate)
        if period is not None and op.fixed and abs(reduced(op.angles[0], period)) <= tol + 1e-12:
            d = distance_to_identity(op.gate, op.angles[0])
            result.pruned += 1
            result.error_bound += 2 * d
            result.removed.append((op.gate, op.wires, op.angles[0]))
            continue
        kept.append(op)
    return kept


def merge_pass(ops: list[WorkOp], result: PruneResult) -> list[WorkOp]:
    """Merge each rotation into an earlier one of the same gate and qubits it can commute back
    to, and cancel meeting pairs of self-inverse gates. Exact."""
    out: list[WorkOp | None] = []
    for op in ops:
        j = _partner(out, op)
        if j is None:
            out.append(op)
        elif op.gate in SELF_INVERSE:
            out[j] = None
            result.cancelled += 2
        else:
            prev = out[j]
            prev.angles = [prev.angles[0] + op.angles[0]]
            prev.trainable = [prev.trainable[0] or op.trainable[0]]
            result.merged += 1
    return [op for op in out if op is not None]


def _same_place(a: WorkOp, b: WorkOp) -> bool:
    return a.wires == b.wires or (a.gate in SYMMETRIC and set(a.wires) == set(b.wires))


def _partner(out: list, op: WorkOp) -> int | None:
    """Index of the earlier op that ``op`` merges with or cancels, or None."""
    mergeable = op.gate in PERIODS and op.fixed
    if not (mergeable or op.gate in SELF_INVERSE):
        return None
    for j in range(len(out) - 1, -1, -1):
        prev = out[j]
        if prev is None or not set(prev.wires) & set(op.wires):
            continue
        if prev.gate == op.gate and _same_place(prev, op) and (prev.fixed or not mergeable):
            return j
        if not commutes(prev.gate, prev.wires, op.gate, op.wires):
            return None
    return None


def commutes(g1: str, w1: tuple, g2: str, w2: tuple) -> bool:
    """Whether two gates commute for every angle (checked on random angles, cached)."""
    wires = sorted(set(w1) | set(w2))
    rel = {q: i for i, q in enumerate(wires)}
    return _commutes(g1, tuple(rel[q] for q in w1), g2, tuple(rel[q] for q in w2), len(wires))


@lru_cache(maxsize=1024)
def _commutes(g1: str, w1: tuple, g2: str, w2: tuple, n: int) -> bool:
    rng = np.random.default_rng(12345)
    for _ in range(2):  # two random angle draws: an accidental commutation at both is measure zero
        a = _embedded(g1, w1, n, rng)
        b = _embedded(g2, w2, n, rng)
        if not np.allclose(a @ b, b @ a, atol=1e-10):
            return False
    return True


def _embedded(name: str, wires: tuple, n: int, rng) -> np.ndarray:
    """The gate's matrix on ``wires`` of ``n`` qubits (wire 0 most significant)."""
    g = gate(name)
    p = torch.tensor(rng.uniform(-math.pi, math.pi, g.n_params), dtype=torch.float64)
    m = g.matrix(p).to(torch.complex128).numpy()
    k = len(wires)
    rest = [q for q in range(n) if q not in wires]
    full = np.kron(m, np.eye(2 ** (n - k)))  # acts on (wires, rest) order
    perm = list(wires) + rest  # axis i of full is qubit perm[i]
    t = full.reshape([2] * (2 * n))
    inv = np.argsort(perm)
    t = t.transpose(list(inv) + [n + i for i in inv])
    return t.reshape(2 ** n, 2 ** n)


def simplify(ops: list[WorkOp], tol: float | None, result: PruneResult) -> list[WorkOp]:
    """Prune (when ``tol`` is given) and merge until nothing changes."""
    while True:
        n = len(ops)
        if tol is not None:
            ops = prune_pass(ops, tol, result)
        ops = merge_pass(ops, result)
        if len(ops) == n:
            return ops


def prune_spec(spec: CircuitSpec, weights: torch.Tensor, tol: float | None = 0.0) -> PruneResult:
    """Prune near-identity rotations and merge what meets, on a trained circuit.

    Args:
        spec: the circuit.
        weights: its trained weights ``[spec.n_weights]``.
        tol: radians in [0, π]: rotations with ``|angle mod period| <= tol`` go (0 removes exact
            identities only); None merges without pruning.

    Returns:
        a PruneResult (new spec, new weights ``[n_weights']``, counts and the error bound).
    """
    if tol is not None:
        tol = check_tolerance(tol)
    result = PruneResult(spec, weights, ops_before=len(spec.ops))
    ops = simplify(canonical_ops(spec, weights), tol, result)
    result.spec, result.weights = emit(ops, spec, weights.dtype)
    return result
