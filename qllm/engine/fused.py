"""Fused strategy: a fixed segment is the same for every token, so build its 2^n x 2^n matrix once
per call (by running its micro-ops on the identity, rows as a batch of basis states) and apply it
to the whole batch as one matrix product: ``state @ M`` with ``M = U^T``.
"""

from __future__ import annotations

import torch

from qllm.engine.apply import apply_micro
from qllm.engine.plan import Segment
from qllm.spec import CircuitSpec


def segment_matrix(spec: CircuitSpec, seg: Segment, inputs, weights, dtype, device) -> torch.Tensor:
    m = torch.eye(2**spec.n_qubits, dtype=dtype, device=device)
    for micro in seg.micros:
        m = apply_micro(spec, micro, m, inputs, weights)
    return m  # [2^n, 2^n], row k = U|k>


def choose_fused(n_qubits: int, seg: Segment, batch: int, strategy: str) -> bool:
    """Fuse when the matrix product (B * 4^n multiply-adds at matmul speed) plus building the
    matrix (micro-ops on 2^n rows) beats applying the micro-ops to B rows. Matmul runs roughly an
    order of magnitude more FLOPs per second than the memory-bound gate kernels."""
    if strategy in ("fused", "gates"):
        return strategy == "fused"
    dim = 2**n_qubits
    if n_qubits > 12 or dim >= batch:
        return False
    k = len(seg.micros)
    fused = batch * dim / 10 + k * dim
    gates = k * batch
    return fused < gates
