"""Product-state prefix: single-qubit gates that act before any multi-qubit gate on their qubit.

Each qubit's 2-vector is its gates applied to |0> (one broadcast matrix-vector product per step:
fewer autograd ops than writing the 2x2 product out elementwise); the batch state is their
Kronecker product, built as a balanced tree so that only the last outer product (e.g. 16 x 16 for
8 qubits) touches the full 2^n state. The tree splits a list of per-qubit vectors (one unbind)
rather than slicing the [B, n, 2] tensor: slicing's backward allocates a zero tensor per slice.
"""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import step_matrices
from qllm.engine.plan import Plan
from qllm.gates import gate


def kron_vectors(vecs: list[torch.Tensor], i: int = 0, j: int | None = None,
                 memo: dict | None = None) -> torch.Tensor:
    """Per-qubit ``[B, 2]`` vectors ``vecs[i:j]`` -> ``[B, 2^(j - i)]`` (the first qubit most
    significant); ``memo`` collects the tree's nodes by (i, j) for a hand-written backward.
    Trailing axes ride along: ``[H, 2, B]`` -> ``[H, 2^(j - i), B]`` (kron.py's layout)."""
    j = len(vecs) if j is None else j
    if j - i == 1:
        return vecs[i]
    mid = i + (j - i) // 2
    hi, lo = kron_vectors(vecs, i, mid, memo), kron_vectors(vecs, mid, j, memo)
    out = (hi.unsqueeze(2) * lo.unsqueeze(1)).flatten(1, 2)  # [B, 2^(mid - i) * 2^(j - mid)]
    if memo is not None:
        memo[i, j] = out
    return out


def product_state(plan: Plan, ctx: AngleContext, dtype) -> torch.Tensor:
    """The batch state after the prefix: ``[B, 2^n]``."""
    B, n, device = ctx.B, plan.n_qubits, ctx.shared.device
    if plan.prefix is None:
        state = torch.zeros(B, 2**n, dtype=dtype, device=device)
        state[:, 0].fill_(1)
        return state
    return kron_vectors(list(qubit_vectors(plan, ctx, dtype).unbind(1))).to(dtype)


def qubit_vectors(plan: Plan, ctx: AngleContext, dtype) -> torch.Tensor:
    """Each qubit's 2-vector after the whole prefix: ``[B, n, 2]``."""
    vec, pending = prefix_vectors(plan, ctx, dtype)
    return _apply(pending, vec)


def prefix_vectors(plan: Plan, ctx: AngleContext, dtype, steps=None):
    """Each qubit's unit 2-vector after the prefix, as ``(vec [B, n, 2], pending)``: the trailing
    weight-only steps (``[n, 2, 2]``, or None) are not applied per token, so a caller that fuses
    a matrix next can fold them into it (``vec`` is expanded when nothing reads data). Steps
    of real gates on real vectors stay real (half the arithmetic of the complex ``dtype``).
    ``steps``: the prefix steps to run (default all)."""
    vec = None  # [n, 2] or [B, n, 2]
    pending = None  # product of shared (weight-only) steps not yet applied to a per-token vec
    real_dtype = ctx.shared.dtype
    for step in plan.prefix.steps if steps is None else steps:
        real = (vec is None or not vec.is_complex()) and all(gate(g).real for g, _, _ in step.parts)
        m = step_matrices(step, ctx, real_dtype if real else dtype)
        if vec is not None and vec.dim() == 3 and m.dim() == 3:  # shared after data: defer
            pending = m if pending is None else _matmul(m, pending)  # [n, 2, 2]: no batch
            continue
        vec = _apply(pending, vec)
        pending = None
        vec = m[..., :, 0] if vec is None else _apply(m, vec)
    return vec.expand(ctx.B, plan.n_qubits, 2), pending


def _apply(m: torch.Tensor | None, vec: torch.Tensor | None) -> torch.Tensor | None:
    """2x2 matrices ``[.., n, 2, 2]`` times 2-vectors ``[.., n, 2]`` (None: nothing to apply)."""
    return vec if m is None or vec is None else _matmul(m, vec.unsqueeze(-1)).squeeze(-1)


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b``, a real factor promoted to the other's complex dtype."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype) @ b.to(dtype)


def split_prefix(plan: Plan) -> tuple[list, list]:
    """The prefix steps up to the last one that reads data, and the weight-only steps after it
    (nothing after when no step reads data: then the whole prefix is the same for every token)."""
    steps = plan.prefix.steps
    data = [i for i, s in enumerate(steps) if any(g is not None and g.data for _, g, _ in s.parts)]
    return (steps, []) if not data else (steps[:data[-1] + 1], steps[data[-1] + 1:])
