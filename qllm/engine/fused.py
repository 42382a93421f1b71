"""Fused strategy: a fixed segment (no data) is the same for every token, so build its 2^n x 2^n
matrix once per call, by running its micro-ops on the identity (rows as a batch of basis states),
and apply it to the whole batch as one matrix product: ``state @ M`` with ``M = U^T``.

It pays when the micro-ops are many and the matrix small (small n, many layers); past n ~ 8 the
B * 4^n matrix product loses to the B * 2^n * 16 Kronecker-block path. ``choose_fused`` decides
with a cost model whose constants were measured on a 2-core CPU (benchmarks/engine_speed.py).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import apply_micro, kron, layer_matrices
from qllm.engine.micro import LAUNCH_US, MATMUL_NS, Layer, Perm
from qllm.engine.plan import Segment, on_device, rotation_index

DENSE_QUBITS = 8  # up to here a single-qubit layer's matrix is built densely (see below)


def segment_matrix(seg: Segment, ctx: AngleContext, n: int, dtype, device) -> torch.Tensor:
    """``[2^n, 2^n]`` with row k = U|k>.

    Up to DENSE_QUBITS qubits a single-qubit layer's matrix is the Kronecker product of its 2x2s
    (n - 1 small products: a few dozen autograd ops instead of the ~150 of running the batch
    machinery on the identity, which dominate a small circuit's step) and is multiplied in;
    leading permutations only reorder its rows. Past that, each micro-op runs on the identity
    (2^n * 2^n * 16 per block instead of a 2^n-cubed product)."""
    dense = n <= DENSE_QUBITS
    m, gather, inverse = None, None, None  # while m is None the product so far is `gather`

    def permutation() -> torch.Tensor:
        eye = torch.eye(2**n, dtype=dtype, device=device)
        return eye if gather is None else eye[:, gather]

    for micro in seg.micros:
        if m is None and isinstance(micro, Perm):
            g = on_device(micro.gather, device)
            gather, inverse = (g, on_device(micro.inverse, device)) if gather is None \
                else (gather[g], None)
        elif dense and isinstance(micro, Layer):
            k = layer_matrix(micro, ctx, n, dtype, device)
            if m is not None:
                m = m @ k
            else:  # P @ K for P = eye[:, gather]: the rows of K, reordered
                m = k if gather is None else k[torch.argsort(gather) if inverse is None else inverse]
        else:
            m = apply_micro(micro, permutation() if m is None else m, ctx, n)
    return permutation() if m is None else m


@lru_cache(maxsize=64)
def _unrotation(n: int, h: int) -> torch.Tensor:
    return torch.argsort(rotation_index(n, h))


def unrotation(layer: Layer, n: int, device) -> torch.Tensor | None:
    """Column order of a rotated layer's matrix (None when the layer is not rotated)."""
    return on_device(_unrotation(n, layer.blocks[0][1]), device) if layer.rotated else None


def layer_kron(layer: Layer, u: torch.Tensor, n: int) -> torch.Tensor:
    """The Kronecker product of the transposed 2x2s ``u [q, 2, 2]`` (identity on other qubits)."""
    per_qubit = dict(zip(layer.qubits, u.transpose(-1, -2).unbind(-3)))
    eye = torch.eye(2, dtype=u.dtype, device=u.device)
    return kron([per_qubit.get(q, eye) for q in range(n)])


def layer_matrix(layer: Layer, ctx: AngleContext, n: int, dtype, device) -> torch.Tensor:
    """``M`` with ``apply_layer(state) == state @ M`` for a layer without data: the Kronecker
    product of the transposed 2x2s, columns in the layer's output order (rotated layers leave
    their first block's qubits last)."""
    k = layer_kron(layer, layer_matrices(layer, ctx, dtype), n)
    cols = unrotation(layer, n, device)
    return k if cols is None else k[:, cols]


def build_cost_us(seg: Segment, n: int) -> float:
    """Estimated forward + backward time of ``segment_matrix`` (same branches)."""
    dim, cost, started = 2**n, 0.0, False
    for m in seg.micros:
        if not started and isinstance(m, Perm):
            cost += LAUNCH_US
        elif n <= DENSE_QUBITS and isinstance(m, Layer):
            cost += (4 * len(m.steps) + 2 * n) * LAUNCH_US  # its 2x2s and Kronecker products
            cost += 3 * dim**3 * MATMUL_NS / 1e3 if started else 0.0
            started = True
        else:
            cost += m.cost_us(dim, n)
            started = True
    return cost


def choose_fused(n_qubits: int, seg: Segment, batch: int, strategy: str) -> bool:
    """Fuse a fixed segment when building its matrix plus one B x 2^n x 2^n matrix product
    (three with the backward) is estimated cheaper than running its micro-ops on the batch."""
    if seg.data:
        return False
    if strategy in ("fused", "gates"):
        return strategy == "fused"
    if n_qubits > 12:
        return False
    return fused_cost_us(seg, n_qubits, batch) < gates_cost_us(seg, n_qubits, batch)


def fused_cost_us(seg: Segment, n_qubits: int, batch: int) -> float:
    """Estimated forward + backward time of the fused path: the matrix's build plus one
    B x 2^n x 2^n product (three with the backward)."""
    dim = 2**n_qubits
    return build_cost_us(seg, n_qubits) + 3 * LAUNCH_US + 3 * batch * dim * dim * MATMUL_NS / 1e3


def gates_cost_us(seg: Segment, n_qubits: int, batch: int) -> float:
    """Estimated forward + backward time of running the segment's micro-ops on the batch."""
    return sum(m.cost_us(batch, n_qubits) for m in seg.micros)
