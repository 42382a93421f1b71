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


def _kron_vectors(vecs: list[torch.Tensor]) -> torch.Tensor:
    """Per-qubit ``[B, 2]`` vectors -> ``[B, 2^m]`` (the first qubit most significant)."""
    if len(vecs) == 1:
        return vecs[0]
    half = len(vecs) // 2
    hi, lo = _kron_vectors(vecs[:half]), _kron_vectors(vecs[half:])
    return (hi[:, :, None] * lo[:, None, :]).flatten(1)  # [B, 2^half * 2^(m - half)]


def product_state(plan: Plan, ctx: AngleContext, dtype) -> torch.Tensor:
    """The batch state after the prefix: ``[B, 2^n]``."""
    B, n, device = ctx.B, plan.n_qubits, ctx.shared.device
    if plan.prefix is None:
        state = torch.zeros(B, 2**n, dtype=dtype, device=device)
        state[:, 0].fill_(1)
        return state
    vec = None  # [n, 2] or [B, n, 2]
    pending = None  # product of shared (weight-only) steps not yet applied to a per-token vec
    for step in plan.prefix.steps:
        m = step_matrices(step, ctx, dtype)
        if vec is not None and vec.dim() == 3 and m.dim() == 3:  # shared after data: defer
            pending = m if pending is None else m @ pending  # [n, 2, 2]: no batch
            continue
        vec = _apply(pending, vec)
        pending = None
        vec = m[..., :, 0] if vec is None else _apply(m, vec)
    vec = _apply(pending, vec)
    return _kron_vectors(list(vec.expand(B, n, 2).unbind(1)))


def _apply(m: torch.Tensor | None, vec: torch.Tensor | None) -> torch.Tensor | None:
    """2x2 matrices ``[.., n, 2, 2]`` times 2-vectors ``[.., n, 2]`` (None: nothing to apply)."""
    return vec if m is None or vec is None else (m @ vec.unsqueeze(-1)).squeeze(-1)
