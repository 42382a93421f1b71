"""Product-state prefix: leading single-qubit gates acting on |0...0>.

Each qubit's 2-vector is the first column of the product of its 2x2 matrices; the batch state is
their Kronecker product, built with n broadcasted outer products and no 2^n x 2^n matrix.
"""

from __future__ import annotations

import torch

from qllm.engine.apply import micro_matrix
from qllm.engine.plan import Micro, Plan
from qllm.spec import CircuitSpec


def product_state(spec: CircuitSpec, plan: Plan, inputs, weights, dtype) -> torch.Tensor:
    B = inputs.shape[0]
    state = None
    for ops in plan.prefix:
        if ops:
            mat = micro_matrix(spec, Micro("mat", ops, wires=ops[0].wires), inputs, weights, dtype)
            vec = mat[..., :, 0]  # [2] or [B, 2]
        else:
            vec = torch.zeros(2, dtype=dtype, device=inputs.device)
            vec[0] = 1
        if vec.dim() == 1:
            vec = vec.expand(B, 2)
        state = vec if state is None else (state[:, :, None] * vec[:, None, :]).reshape(B, -1)
    return state  # [B, 2^n]
