"""Fused strategy: a fixed segment (no data) is the same for every token, so build its 2^n x 2^n
matrix once per call, by running its micro-ops on the identity (rows as a batch of basis states),
and apply it to the whole batch as one matrix product: ``state @ M`` with ``M = U^T``.

It pays when the micro-ops are many and the matrix small (small n, many layers); past n ~ 8 the
B * 4^n matrix product loses to the B * 2^n * 16 Kronecker-block path. ``choose_fused`` decides
with a cost model whose constants were measured on a 2-core CPU (benchmarks/engine_speed.py).
"""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import apply_micro
from qllm.engine.plan import Diag, Layer, Mat, Perm, Segment

# Cost model, in microseconds: a launched op (forward + backward) costs LAUNCH_US; a micro-op
# touches its rows at ELEM_NS per amplitude; a matrix product runs at MATMUL_NS per multiply-add.
LAUNCH_US = 25.0
ELEM_NS = 1.0
MATMUL_NS = 0.02


def segment_matrix(seg: Segment, ctx: AngleContext, n: int, dtype, device) -> torch.Tensor:
    m = torch.eye(2**n, dtype=dtype, device=device)
    for micro in seg.micros:
        m = apply_micro(m, micro, ctx, n)
    return m  # [2^n, 2^n], row k = U|k>


def micro_cost_us(micro, rows: int, n: int) -> float:
    """Estimated forward + backward time of one micro-op on ``rows`` states."""
    amps = rows * 2**n
    if isinstance(micro, Layer):
        bl = micro.blocks
        launches = 4 * len(micro.steps) + 3 * sum(k for _, k in bl)
        return launches * LAUNCH_US + sum(amps * 2**k for _, k in bl) * MATMUL_NS * 3 / 1e3 \
            + len(bl) * amps * ELEM_NS / 1e3
    if isinstance(micro, Perm):
        return 2 * LAUNCH_US + 2 * amps * ELEM_NS / 1e3
    if isinstance(micro, Diag):
        return 6 * LAUNCH_US + 3 * amps * ELEM_NS / 1e3
    assert isinstance(micro, Mat)
    return 8 * LAUNCH_US + 6 * amps * ELEM_NS / 1e3


def choose_fused(n_qubits: int, seg: Segment, batch: int, strategy: str) -> bool:
    """Fuse a fixed segment when building its matrix plus one B x 2^n x 2^n matrix product
    (three with the backward) is estimated cheaper than running its micro-ops on the batch."""
    if seg.data:
        return False
    if strategy in ("fused", "gates"):
        return strategy == "fused"
    if n_qubits > 12:
        return False
    dim = 2**n_qubits
    gates = sum(micro_cost_us(m, batch, n_qubits) for m in seg.micros)
    build = sum(micro_cost_us(m, dim, n_qubits) for m in seg.micros)
    fused = build + 3 * LAUNCH_US + 3 * batch * dim * dim * MATMUL_NS / 1e3
    return fused < gates
