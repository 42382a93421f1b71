"""Product-state prefix: single-qubit gates that act before any multi-qubit gate on their qubit.

Each qubit's 2-vector is the first column of its 2x2 product; the batch state is their Kronecker
product, built with n broadcasted outer products and no 2^n x 2^n matrix.
"""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import layer_matrices
from qllm.engine.plan import Plan


def product_state(plan: Plan, ctx: AngleContext, dtype) -> torch.Tensor:
    """The batch state after the prefix: ``[B, 2^n]``."""
    B, n, device = ctx.B, plan.n_qubits, ctx.shared.device
    if plan.prefix is None:
        state = torch.zeros(B, 2**n, dtype=dtype, device=device)
        state[:, 0] = 1
        return state
    vecs = layer_matrices(plan.prefix, ctx, dtype)[..., :, 0]  # [n, 2] or [B, n, 2]
    if vecs.dim() == 2:
        vecs = vecs.expand(B, n, 2)
    state = vecs[:, 0]
    for q in range(1, n):
        state = (state[:, :, None] * vecs[:, q, None, :]).reshape(B, -1)
    return state  # [B, 2^n]
