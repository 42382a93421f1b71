"""Product-state prefix: single-qubit gates that act before any multi-qubit gate on their qubit.

Each qubit's 2-vector is its gates applied to |0> (2x2 times 2-vector written out elementwise: no
batched 2x2 matrix products); the batch state is their Kronecker product, built as a balanced tree
so that only the last outer product (e.g. 16 x 16 for 8 qubits) touches the full 2^n state.
"""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import step_matrices
from qllm.engine.plan import Plan


def _kron_vectors(vecs: torch.Tensor) -> torch.Tensor:
    """``[B, m, 2]`` per-qubit vectors -> ``[B, 2^m]`` (qubit 0 most significant)."""
    m = vecs.shape[1]
    if m == 1:
        return vecs[:, 0]
    hi, lo = _kron_vectors(vecs[:, : m // 2]), _kron_vectors(vecs[:, m // 2:])
    return (hi[:, :, None] * lo[:, None, :]).flatten(1)  # [B, 2^(m//2) * 2^(m - m//2)]


def product_state(plan: Plan, ctx: AngleContext, dtype) -> torch.Tensor:
    """The batch state after the prefix: ``[B, 2^n]``."""
    B, n, device = ctx.B, plan.n_qubits, ctx.shared.device
    if plan.prefix is None:
        state = torch.zeros(B, 2**n, dtype=dtype, device=device)
        state[:, 0].fill_(1)
        return state
    vec = None  # [n, 2] or [B, n, 2]
    for step in plan.prefix.steps:
        m = step_matrices(step, ctx, dtype)
        if vec is None:
            vec = m[..., :, 0]  # applied to |0>
        else:
            vec = m[..., :, 0] * vec[..., 0:1] + m[..., :, 1] * vec[..., 1:2]
    return _kron_vectors(vec.expand(B, n, 2))
