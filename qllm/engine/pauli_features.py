"""The Heisenberg core read on the encoding's features: its program and its batch part.

Why: where the encoding has one data rotation per qubit (``head_table``, bloch.py), each qubit's
Bloch row is M_q @ f_q with a constant M_q and the features f_q = (1, cos t, sin t). Walk the
observables back through everything after the encoding, the weight-only tail included
(pauli_walk.py): every path is then a coefficient (a product of the weights' cos and sin, one
gather and one product per call) times prod_q M_q[s_q] . f_q, so each observable is one
multilinear form in the features, with 3^n coefficients

    T[k, u] = sum_{paths p of k} coef_p prod_q M_q[s_pq, u_q]     (one scatter of the coefs).

Cut the qubits at s: a token reads ``sum_j f_b[j] (T_k f_a)[j]``, with f_a, f_b the Kronecker
products of the features of the first s qubits and of the rest; a few rows per token where the
sparse readout (pauli_readout.py) gathers and multiplies dozens. It pays while k 3^n and the
paths are few (n = 4, two layers: 324 of each), and ``feature_cost_us`` weighs both. The parts
come with their backward written out: feature_core.py runs them as one autograd node, since at
these sizes the run time is the op count.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from qllm.engine.bloch import head_table
from qllm.engine.encode import kron_vectors, split_prefix
from qllm.engine.kron import _kron_tree_grads
from qllm.engine.pauli_walk import walk
from qllm.engine.plan import Plan

# in fused.py's units, fitted against the dense core's model (benchmarks/auto_choice.py, n = 4
# and 5, B = 256..16384): the small ops, per path factor (gathered and multiplied, forward and
# backward), per token each row touched and multiply-add
BASE_US, FACTOR_NS, ROW_NS, GEMM_NS = 50.0, 1.0, 0.026, 0.0013
# past 6 qubits k 3^n multiply-adds per token outgrow the sparse readout's (and the walk through
# the tail its MAX_PATHS): the route is not even built
MAX_QUBITS = 6


def feature_split(n: int, k: int) -> int:
    """The cut s with the fewest rows touched per token."""
    return min(range(1, n + 1), key=lambda s: feature_rows(n, k, s))


def feature_rows(n: int, k: int, s: int) -> int:
    """Rows per token of the batch part at cut s, forward and backward: the two Kronecker
    products (and their tree nodes), the product with T and its rows read against f_b."""
    kron = sum(3**m for m in range(2, s + 1)) + sum(3**m for m in range(2, n - s + 1))
    return 3 * kron + (5 * k * 3 ** (n - s) if s < n else 2 * k)


@dataclass(frozen=True)
class FeatureProgram:
    """The plan's paths, walked through the tail, as ``FeatureCore`` reads them."""

    inst_slot: torch.Tensor  # [R] each rotation instance's index into the shared vector
    inst_mult: torch.Tensor | None  # [R] its multiplier: angle = shared[slot] * mult (None: 1)
    factors: torch.Tensor  # [P * D] each path's factors, into [1, cos(angles), sin(angles)]
    depth: int  # D
    n_paths: int  # P
    path: torch.Tensor | None  # [E] each entry of T's scatter: its path (None: entry e = path e)
    slot: torch.Tensor  # [E] its place in T [k 3^(n-s), 3^s], flattened
    scale: torch.Tensor  # [E] its path's constant coefficient times prod_q M_q[s_q, u_q]
    n: int
    k: int
    s: int

    def cost_us(self, batch: int, circuits: int = 1) -> float:
        """Estimated forward + backward time in fused.py's units."""
        paths = circuits * (self.n_paths * max(self.depth, 1) + self.slot.numel())
        return BASE_US + paths * FACTOR_NS / 1e3 + batch * (
            feature_rows(self.n, self.k, self.s) * ROW_NS
            + 3 * self.k * 3**self.n * GEMM_NS) / 1e3

    def to(self, device, dtype) -> FeatureProgram:
        move = lambda t: None if t is None else t.to(device, None if t.dtype == torch.long  # noqa: E731
                                                      else dtype)
        return FeatureProgram(*(move(getattr(self, f)) for f in (
            "inst_slot", "inst_mult", "factors")), self.depth, self.n_paths, move(self.path),
            move(self.slot), move(self.scale), self.n, self.k, self.s)


def feature_program(plan: Plan) -> FeatureProgram | None:
    """The plan's ``FeatureProgram``, cached on the plan (None: more than MAX_QUBITS qubits,
    an encoding that is not one data rotation per qubit, or a walk through the tail that gives
    up)."""
    if "feature_program" not in plan.cache:
        small = plan.prefix is not None and 1 < plan.n_qubits <= MAX_QUBITS
        head = head_table(plan) if small else None
        walked = None if head is None else walk(
            _tail_ops(plan) + list(plan.rest), plan.observables, plan.sources)
        plan.cache["feature_program"] = None if walked is None else _program(plan, head.M,
                                                                             *walked)
    return plan.cache["feature_program"]


def _tail_ops(plan: Plan) -> list:
    """The prefix's weight-only gates after the encoding, in time order on each qubit."""
    cut = len(split_prefix(plan)[0])
    per_qubit: dict = {}
    for op in plan.prefix.ops:
        per_qubit.setdefault(op.wires[0], []).append(op)
    return [op for ops in per_qubit.values() for op in ops[cut:]]


def _program(plan: Plan, M: torch.Tensor, paths: list, insts: list) -> FeatureProgram:
    n, k = plan.n_qubits, len(plan.observables)
    s = feature_split(n, k)
    rows = [[[(u, v) for u, v in enumerate(row) if v != 0] for row in qubit] for qubit in M.tolist()]
    kept, path, slot, scale = [], [], [], []  # kept: each path's factors
    for string, c, factors, o in paths:
        terms = [rows[q][letter] for q, letter in enumerate(string)]  # (feature, M entry)
        if c == 0.0 or not all(terms):  # a zero coefficient, or a row the encoding zeroes
            continue
        for combo in itertools.product(*terms):
            u = [a for a, _ in combo]
            path.append(len(kept))
            slot.append((o * 3 ** (n - s) + _base3(u[s:])) * 3**s + _base3(u[:s]))
            scale.append(c * math.prod(v for _, v in combo))
        kept.append(factors)
    depth = max(map(len, kept), default=0)
    mult = torch.tensor([m for _, m in insts], dtype=torch.float64)
    long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return FeatureProgram(
        long([i for i, _ in insts]), None if bool((mult == 1).all()) else mult,
        long([list(f) + [0] * (depth - len(f)) for f in kept]).flatten(), depth, len(kept),
        None if path == list(range(len(kept))) else long(path), long(slot),
        torch.tensor(scale, dtype=torch.float64), n, k, s)


def _base3(digits: list) -> int:
    out = 0
    for d in digits:
        out = 3 * out + d
    return out


def batch_forward(T: torch.Tensor, t: torch.Tensor, prog: FeatureProgram) -> tuple:
    """``[H, k, B]`` from T and the data angles t ``[H, n, B]``; the tensors and the Kronecker
    trees' node keys ``batch_backward`` reads."""
    (H, n, B), s, k = t.shape, prog.s, prog.k
    cos, sin = t.cos(), t.sin()
    f = torch.stack([torch.ones_like(cos), cos, sin], 2)  # [H, n, 3, B]
    per_qubit = list(f.unbind(1))
    memo_a, memo_b = {}, {}
    f_a = kron_vectors(per_qubit[:s], memo=memo_a)  # [H, 3^s, B]
    P = T @ f_a  # [H, k 3^(n-s), B]
    f_b = kron_vectors(per_qubit[s:], memo=memo_b) if s < n else None  # [H, 3^(n-s), B]
    out = P if f_b is None else (P.view(H, k, -1, B) * f_b.unsqueeze(1)).sum(2)
    memo_a.pop((0, s), None)  # a tree's root is its output
    memo_b.pop((0, n - s), None)
    saved = (T, f, P, f_a, f_b, *memo_a.values(), *memo_b.values())
    return out, saved, (list(memo_a), list(memo_b))


def batch_backward(saved: tuple, keys: tuple, grad: torch.Tensor, prog: FeatureProgram,
                   need_t: bool):
    """(dL/dT, dL/dt) from dL/d out (dL/dt None when not needed)."""
    T, f, P, f_a, f_b, *nodes = saved
    (H, k, B), n, s = grad.shape, f.shape[1], prog.s
    nodes = iter(nodes)
    memo_a, memo_b = [{key: next(nodes) for key in ks} for ks in keys]
    per_qubit = list(f.unbind(1))
    grad = grad.contiguous()
    g_P = grad if f_b is None else (grad.unsqueeze(2) * f_b.unsqueeze(1)).reshape(H, -1, B)
    g_T = g_P @ f_a.transpose(1, 2)
    if not need_t:
        return g_T, None
    g_f = _kron_tree_grads(per_qubit[:s], 0, s, memo_a, T.transpose(1, 2) @ g_P)
    if f_b is not None:
        g_b = (grad.unsqueeze(2) * P.view(H, k, -1, B)).sum(1)  # [H, 3^(n-s), B]
        g_f += _kron_tree_grads(per_qubit[s:], 0, n - s, memo_b, g_b)
    g_f = torch.stack(g_f, 1)  # [H, n, 3, B]
    return g_T, g_f[:, :, 2] * f[:, :, 1] - g_f[:, :, 1] * f[:, :, 2]  # d(cos, sin)/dt
