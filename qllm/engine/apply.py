"""Apply micro-ops (see plan.py) to a batch of statevectors ``[B, 2^n]``.

A micro-op's matrices are shared ``[..., d, d]`` or per token ``[B, ..., d, d]``. The state is
real when the whole circuit is real, complex otherwise.
"""

from __future__ import annotations

from functools import singledispatch

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.micro import Diag, Layer, Mat, Perm, Step
from qllm.engine.plan import BLOCK_QUBITS, blocks, on_device  # noqa: F401
from qllm.gates import gate


def step_matrices(step: Step, ctx: AngleContext, dtype) -> torch.Tensor:
    """One step's 2x2 matrices in layer-qubit order: ``[q, 2, 2]``, or ``[B, q, 2, 2]`` when an
    angle reads data; one matrix call per gate kind, not per op."""
    mats = []
    for name, group, positions in step.parts:
        angles = ctx.angles(group) if group is not None else ctx.shared.new_zeros(len(positions), 0)
        mats.append(gate(name).matrix(angles).to(dtype))  # [m, 2, 2] or [B, m, 2, 2]
    if step.n_missing:
        mats.append(torch.eye(2, dtype=dtype, device=ctx.shared.device).expand(step.n_missing, 2, 2))
    if len(mats) > 1:
        if any(m.dim() == 4 for m in mats):
            mats = [m.expand(ctx.B, *m.shape[-3:]) for m in mats]
        m = torch.cat(mats, -3)
    else:
        m = mats[0]
    return m if step.order is None else m[..., on_device(step.order, m.device), :, :]


def layer_matrices(layer: Layer, ctx: AngleContext, dtype) -> torch.Tensor:
    """Each layer qubit's 2x2 product, in ``layer.qubits`` order: ``[q, 2, 2]`` or
    ``[B, q, 2, 2]`` (shared steps stay unbatched until a data step needs the batch)."""
    return steps_product(layer.steps, ctx, dtype)


def steps_product(steps: list[Step], ctx: AngleContext, dtype) -> torch.Tensor | None:
    """The product of ``steps``' 2x2s per qubit, the first step applied first (None: no
    steps)."""
    total = None
    for step in steps:
        m = step_matrices(step, ctx, dtype)
        total = m if total is None else m @ total
    return total


def kron(factors: list[torch.Tensor]) -> torch.Tensor:
    """Kronecker product of ``[..., a, b]`` factors (the first is the most significant), as a
    balanced tree: only the last product is full size."""
    if len(factors) == 1:
        return factors[0]
    half = len(factors) // 2
    hi, lo = kron(factors[:half]), kron(factors[half:])
    out = hi.unsqueeze(-1).unsqueeze(-3) * lo.unsqueeze(-2).unsqueeze(-4)  # [.., a, c, b, d]
    return out.flatten(-4, -3).flatten(-2, -1)


def _realified(mat: torch.Tensor) -> torch.Tensor:
    """Complex ``[..., d, d]`` (out = mat @ x) as real ``[..., 2d, 2d]`` R acting on interleaved
    (re, im) row vectors: v_out = v @ R. Real products need no conjugated copies of the state in
    the backward, which complex autograd makes (a full extra pass per product)."""
    mt = mat.transpose(-1, -2)
    re, im = mt.real, mt.imag
    r = torch.stack([torch.stack([re, im], -1), torch.stack([-im, re], -1)], -3)  # [.., d, 2, d, 2]
    return r.flatten(-4, -3).flatten(-2, -1)


def matmul_last(state: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """``mat`` ([d, d] shared or [B, d, d] per token) on the last axis of ``state`` viewed as
    ``[B, 2^n / d, d]``; complex states run in real arithmetic on their interleaved view."""
    B, d = state.shape[0], mat.shape[-1]
    if state.is_complex():
        v, r, d = torch.view_as_real(state), _realified(mat), 2 * d
    else:
        v, r = state, mat.transpose(-1, -2)
    if r.dim() == 2:
        out = v.reshape(-1, d) @ r
    else:
        out = torch.bmm(v.reshape(B, -1, d), r)
    return torch.view_as_complex(out.reshape(B, -1, 2)) if state.is_complex() else out.reshape(B, -1)


def apply_block(state: torch.Tensor, mat: torch.Tensor, first: int, k: int, n: int) -> torch.Tensor:
    """``mat`` ([d, d] or [B, d, d], d = 2^k) on qubits first..first+k-1 of ``state`` [B, 2^n]."""
    B, d = state.shape[0], 2**k
    L, R = 2**first, 2 ** (n - first - k)
    if mat.dim() == 2:
        if R == 1:
            return (state.reshape(B * L, d) @ mat.T).reshape(B, -1)
        return torch.matmul(mat, state.reshape(B * L, d, R)).reshape(B, -1)
    if R == 1:
        return torch.bmm(state.reshape(B, L, d), mat.transpose(1, 2)).reshape(B, -1)
    if L == 1:
        return torch.bmm(mat, state.reshape(B, d, R)).reshape(B, -1)
    return torch.matmul(mat[:, None], state.reshape(B, L, d, R)).reshape(B, -1)


def _block_kron(u: torch.Tensor, layer: Layer, first: int, k: int) -> torch.Tensor:
    """Kronecker product of the layer's 2x2s on qubits first..first+k-1 (identity elsewhere)."""
    pos = {q: i for i, q in enumerate(layer.qubits)}
    factors = []
    for q in range(first, first + k):
        if q in pos:
            factors.append(u[..., pos[q], :, :])
        else:
            eye = torch.eye(2, dtype=u.dtype, device=u.device)
            factors.append(eye.expand_as(u[..., 0, :, :]))
    return kron(factors)


def apply_layer(state, layer: Layer, ctx: AngleContext, n: int) -> torch.Tensor:
    u = layer_matrices(layer, ctx, state.dtype)  # [.., q, 2, 2]
    if not layer.rotated:
        for first, k in layer.blocks:
            state = apply_block(state, _block_kron(u, layer, first, k), first, k, n)
        return state
    # Rotated: every block acts on the last axis (one plain matrix product), then the axes rotate
    # so the next block is last; the final order (first block last) is absorbed downstream.
    B = state.shape[0]
    for first, k in reversed(layer.blocks):
        d = 2**k
        state = matmul_last(state, _block_kron(u, layer, first, k))
        if first != 0:
            state = state.reshape(B, -1, d).transpose(1, 2).reshape(B, -1)
    return state


class _Gather(torch.autograd.Function):
    """``x[:, idx]`` for a permutation ``idx``: the backward is the inverse gather, which is far
    cheaper than the scatter-add autograd would use for a general index."""

    @staticmethod
    def forward(ctx, x, idx, inv):
        ctx.save_for_backward(inv, idx)
        return x.index_select(1, idx)

    @staticmethod
    def backward(ctx, grad):
        inv, idx = ctx.saved_tensors
        return _Gather.apply(grad, inv, idx), None, None


def permute(state: torch.Tensor, gather: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    return _Gather.apply(state, on_device(gather, state.device), on_device(inverse, state.device))


def diag_phases(d: Diag, ctx: AngleContext, device) -> torch.Tensor:
    """Total phase per basis state: ``[2^n]`` or ``[B, 2^n]`` in the real dtype."""
    dtype = ctx.shared.dtype
    phase = on_device(d.const_phase, device, dtype)
    if d.group is not None:
        angles = ctx.angles(d.group)[..., 0]  # [m] or [B, m]
        phase = phase + angles @ on_device(d.phases, device, dtype)
    return phase


def apply_diag(state, d: Diag, ctx: AngleContext) -> torch.Tensor:
    phase = diag_phases(d, ctx, state.device)
    if state.is_complex():
        return state * torch.polar(torch.ones_like(phase), phase)
    return state * torch.cos(phase)  # real circuits: diagonal phases are 0 or pi


def apply_matrix(state: torch.Tensor, mat: torch.Tensor, wires: tuple[int, ...], n: int):
    """A k-qubit matrix ([d, d] or [B, d, d]) on arbitrary ``wires`` via a reshape/movedim."""
    B, k = state.shape[0], len(wires)
    psi = state.reshape([B] + [2] * n)
    src = [1 + q for q in wires]
    dst = list(range(n + 1 - k, n + 1))
    psi = psi.movedim(src, dst)
    shape = psi.shape
    psi = psi.reshape(B, -1, 2**k) @ mat.transpose(-1, -2)  # [B, rest, d] @ [d, d] or [B, d, d]
    return psi.reshape(shape).movedim(dst, src).reshape(B, -1)


def apply_mat(state, m: Mat, ctx: AngleContext, n: int) -> torch.Tensor:
    g = gate(m.op.gate)
    angles = ctx.angles(m.group)[..., 0, :] if m.group is not None else ctx.shared.new_zeros(0)
    return apply_matrix(state, g.matrix(angles).to(state.dtype), m.op.wires, n)


@singledispatch
def apply_micro(m, state: torch.Tensor, ctx: AngleContext, n: int) -> torch.Tensor:
    """Apply one micro-op to ``state [B, 2^n]``; each micro-op type registers its kernel."""
    raise TypeError(f"no kernel registered for micro-op {type(m).__name__}")


apply_micro.register(Layer)(lambda m, state, ctx, n: apply_layer(state, m, ctx, n))
apply_micro.register(Perm)(lambda m, state, ctx, n: permute(state, m.gather, m.inverse))
apply_micro.register(Diag)(lambda m, state, ctx, n: apply_diag(state, m, ctx))
apply_micro.register(Mat)(lambda m, state, ctx, n: apply_mat(state, m, ctx, n))
