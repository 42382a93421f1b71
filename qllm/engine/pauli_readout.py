"""PauliReadout: the Heisenberg core's batch part as one autograd node, backward by hand.

Why: the batch part of ``pauli_expval`` (the quarters' Kronecker tables of the Bloch rows, the
gathered half rows, ``C A``, the sums per observable) is some 20 small ops, and autograd's
backward through them runs more ops than this one written for the shapes (benchmarks/README.md
has the A/B). A second derivative (``create_graph=True``) recomputes the forward under autograd
and differentiates that, so the core stays differentiable to any order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qllm.engine.encode import kron_vectors
from qllm.engine.kron import _kron_tree_grads
from qllm.engine.shift import recomputed_vjp


@dataclass(frozen=True)
class Rows:
    """A program's index tensors on the run's device (``PauliProgram`` fields, see pauli.py)."""

    quarters: tuple  # four qubit ranges: halves a and b, each cut in two
    rows_a: tuple  # ([UA], [UA]) rows of quarters 0 and 1
    rows_b: tuple  # ([rows], [rows]) rows of quarters 2 and 3
    row_obs: torch.Tensor  # [rows] the observable each row adds to
    k: int  # observables


def _forward(rows: Rows, bloch: torch.Tensor, C: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """``[H, k, B]`` from the Bloch rows ``[H, n, 4, B]`` and C ``[H, rows, UA]``, and the parts
    the backward reads."""
    per_qubit = bloch.unbind(1)  # n x [H, 4, B]
    memos = [{} for _ in rows.quarters]
    tables = [kron_vectors(per_qubit[q.start:q.stop], memo=m) if len(q) else None
              for q, m in zip(rows.quarters, memos)]
    for q, m in zip(rows.quarters, memos):
        m.pop((0, len(q)), None)  # the root is the table itself
    picks = [t.index_select(1, r) if t is not None else None
             for t, r in zip(tables, (*rows.rows_a, *rows.rows_b))]
    half_a = picks[0] if picks[1] is None else picks[0] * picks[1]  # [H, UA, B]
    half_b = picks[2] if picks[3] is None else picks[2] * picks[3]  # [H, rows, B]
    P = C @ half_a  # [H, rows, B]
    H, _, B = P.shape
    out = P.new_zeros(H, rows.k, B).index_add_(1, rows.row_obs, P * half_b)
    return out, dict(memos=memos, tables=tables, picks=picks, half_a=half_a, half_b=half_b, P=P)


def _table_grads(t: list, p: list, rows: Rows, g_a: torch.Tensor, g_b: torch.Tensor) -> list:
    """Gradients of the four quarter tables ``t`` from those of the two halves' rows (``p``:
    the rows picked from each table)."""
    out = []
    for j, (g, index) in enumerate(((g_a, rows.rows_a), (g_b, rows.rows_b))):
        first, second = 2 * j, 2 * j + 1
        own = g if p[second] is None else g * p[second]  # d half / d first pick
        out.append(torch.zeros_like(t[first]).index_add_(1, index[0], own))
        out.append(None if p[second] is None else
                   torch.zeros_like(t[second]).index_add_(1, index[1], g * p[first]))
    return out


class PauliReadout(torch.autograd.Function):
    """``pauli_expval``'s batch part: the Bloch rows ``[H, n, 4, B]`` (bloch.py) and C
    ``[H, rows, UA]`` -> ``[H, k, B]``."""

    @staticmethod
    def forward(ctx, bloch, C, rows: Rows):
        out, parts = _forward(rows, bloch, C)
        memos = parts["memos"]
        # through save_for_backward (not ctx attributes), so torch.utils.checkpoint frees them
        ctx.rows, ctx.memo_keys = rows, [list(m) for m in memos]
        ctx.save_for_backward(bloch, C, parts["half_a"], parts["half_b"], parts["P"],
                              *parts["tables"], *parts["picks"],
                              *(t for m in memos for t in m.values()))
        return out

    @staticmethod
    def backward(ctx, grad):
        bloch, C, half_a, half_b, P, *rest = ctx.saved_tensors
        rows = ctx.rows
        if torch.is_grad_enabled():  # create_graph=True: differentiate the forward again
            return (*recomputed_vjp(lambda b, c: _forward(rows, b, c)[0], (bloch, C), (grad,),
                                    ctx.needs_input_grad), None)
        nodes = iter(rest[8:])
        memos = [{key: next(nodes) for key in keys} for keys in ctx.memo_keys]
        g_terms = grad.index_select(1, rows.row_obs)  # [H, rows, B]
        g_P = g_terms * half_b
        g_C = g_P @ half_a.transpose(1, 2) if ctx.needs_input_grad[1] else None
        if not ctx.needs_input_grad[0]:
            return None, g_C, None
        g_tables = _table_grads(rest[:4], rest[4:8], rows, C.transpose(1, 2) @ g_P, g_terms * P)
        per_qubit, g_qubits = bloch.unbind(1), []
        for q, memo, g in zip(rows.quarters, memos, g_tables):
            if len(q):  # the memo's keys count from the quarter's first qubit
                g_qubits += _kron_tree_grads(per_qubit[q.start:q.stop], 0, len(q), memo, g)
        return torch.stack(g_qubits, 1), g_C, None
