"""Kronecker core: the product-state core without a dense 2^n x 2^n matrix, amplitude-major.

Why: the dense core (product.py) multiplies every token's state by one weight matrix M: B * 4^n
multiply-adds per product and three products per step. But M is a chain of permutations and
single-qubit layers, and a layer is a Kronecker product of blocks of at most 4 qubits: applied
block by block it costs B * 2^n * 2^k per block (a sixteenth of the dense product at n = 8).

The state is kept amplitude-major, ``[H, 2^n, B]`` (H circuits of one spec, B tokens each): the
tokens (and, for a real block, the real and imaginary parts) are matrix columns, so a block on
qubits first..first+k-1 is one (batched) product ``A @ x`` with a long inner dimension, a
permutation is a gather of whole rows (contiguous copies, not a strided gather), and the readout
is one ``signs^T @ probabilities`` product. ``KronExpval`` runs the chain in one autograd node
with a written-out backward: per block one product for the state's gradient and one for the
block's (2^k x 2^k, summed over tokens), per permutation the inverse gather, then the product
state's Kronecker tree walked back. The blocks' small matrices come from the angles by plain
autograd (a few dozen tiny ops per layer).

Plans qualify whose single fixed segment is permutations and single-qubit layers (a rotated
layer's order, see plan.py, is undone in the next gather or the sign rows).
"""

from __future__ import annotations

import torch

from qllm.engine.apply import _block_kron, steps_product
from qllm.engine.encode import _apply, kron_vectors, split_prefix
from qllm.engine.measure import sign_table
from qllm.engine.micro import ELEM_NS, LAUNCH_US, Layer, Perm
from qllm.engine.plan import Plan, on_device, rotation_index
from qllm.engine.shift import first_order
from qllm.gates import gate


def kron_stages(plan: Plan):
    """``(stages, sign_gather)`` for the plan's fixed segment, cached on the plan: stages are
    ``("perm", gather, inverse)`` and ``("layer", layer, real)``; ``sign_gather`` orders the
    sign table's rows for the un-rotated final state (the plan's own, with a last rotated
    layer undone). None when a micro-op is neither a permutation nor a single-qubit layer, or
    there is not exactly one fixed segment."""
    if "kron" in plan.cache:
        return plan.cache["kron"]
    out = None
    if len(plan.segments) == 1 and plan.segments[0].fixed:
        stages, unrotate = [], None  # unrotate: rotated position -> plain row, after a layer
        for m in plan.segments[0].micros:
            if isinstance(m, Perm):
                g = m.gather if unrotate is None else unrotate[m.gather]
                stages.append(("perm", g, torch.argsort(g)))
                unrotate = None
            elif isinstance(m, Layer):
                stages.append(("layer", m, all(map(_real_step, m.steps))))
                unrotate = torch.argsort(rotation_index(plan.n_qubits, m.blocks[0][1])) \
                    if m.rotated else None
            else:
                stages = None
                break
        if stages is not None:
            # the plan's sign table is ordered for the rotated state: plain row k is at index[k]
            gather = plan.sign_gather
            if unrotate is not None:
                rows = torch.argsort(unrotate)
                gather = rows if gather is None else gather[rows]
            out = stages, gather
    plan.cache["kron"] = out
    return out


class StackedAngles:
    """The AngleContext interface over shared angles ``[H, S]`` (H circuits, no data)."""

    def __init__(self, shared: torch.Tensor):
        self.shared, self.B = shared, shared.shape[0]

    def angles(self, group) -> torch.Tensor:
        idx, scale = group.tensors(self.shared.device, self.shared.dtype)
        a = self.shared[:, idx]
        return (a if group.unit_scale else a * scale).view(self.B, *group.shape)


def block_matrices(stages: list, ctx, dtype, stacked: bool) -> list[torch.Tensor]:
    """Each layer's blocks ``[H, d, d]`` (``out = A @ x`` on the block's amplitudes), layer by
    layer, in ``layer.blocks`` order; real gates give real blocks. ``ctx``: an AngleContext
    (H = 1) or StackedAngles (``stacked``)."""
    mats = []
    for kind, layer, real in stages:
        if kind != "layer":
            continue
        u = steps_product(layer.steps, ctx, ctx.shared.dtype if real else dtype)
        u = u if stacked else u.unsqueeze(0)  # [H, q, 2, 2]
        mats += [_block_kron(u, layer, first, k) for first, k in layer.blocks]
    return mats


def _apply_block(x: torch.Tensor, a: torch.Tensor, first: int, k: int, n: int) -> torch.Tensor:
    """``a [H, d, d]`` on qubits first..first+k-1 of ``x [H, 2^n, C]`` (C columns)."""
    H, _, C = x.shape
    view = x.reshape(H, 2**first, 2**k, -1)  # [H, L, d, R * C]
    return torch.matmul(a.unsqueeze(1), view).view(H, 2**n, C)


def _block_grad(x: torch.Tensor, g: torch.Tensor, first: int, k: int) -> torch.Tensor:
    """dL/dA ``[H, d, d]`` for ``y = A x`` on the block: sum over L and columns of g x^H."""
    H = x.shape[0]
    xv = x.reshape(H, 2**first, 2**k, -1)
    gv = g.reshape(H, 2**first, 2**k, -1)
    return (gv @ xv.transpose(-1, -2).conj()).sum(1)


def _as(x: torch.Tensor, real: bool) -> torch.Tensor:
    """A complex state ``[H, 2^n, B]`` as its real view ``[H, 2^n, 2B]`` for a real block."""
    return torch.view_as_real(x).flatten(-2) if real and x.is_complex() else x


def _back(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Undo ``_as`` for a result ``y`` shaped like the real view of ``like``."""
    if like.is_complex() and not y.is_complex():
        return torch.view_as_complex(y.view(*like.shape, 2))
    return y


def _kron_tree_grads(vecs, i: int, j: int, memo: dict, grad: torch.Tensor) -> list:
    """Gradients of the per-qubit ``[H, 2, B]`` vectors from that of their ``kron_vectors``
    product ``[H, 2^n, B]``: at each node ``psi = hi (x) lo``, grad_hi = sum_b g conj(lo)."""
    if j - i == 1:
        return [grad]
    mid = i + (j - i) // 2
    hi, lo = memo.get((i, mid), vecs[i]), memo.get((mid, j), vecs[mid])
    g = grad.view(grad.shape[0], hi.shape[1], lo.shape[1], -1)
    grad_hi = (g * lo.conj().unsqueeze(1)).sum(2)
    grad_lo = (g * hi.conj().unsqueeze(2)).sum(1)
    return _kron_tree_grads(vecs, i, mid, memo, grad_hi) + \
        _kron_tree_grads(vecs, mid, j, memo, grad_lo)


class KronExpval(torch.autograd.Function):
    """``signs^T |chain(kron(vecs))|^2``: vecs ``[H, n, 2, B]`` (per qubit and token), the chain's
    ``block_matrices``, signs ``[2^n, k]`` -> ``[H, k, B]``."""

    @staticmethod
    def forward(ctx, vecs, signs, stages, *mats):
        H, n, _, B = vecs.shape
        memo: dict = {}
        x = kron_vectors(list(vecs.unbind(1)), memo=memo)
        memo.pop((0, n), None)
        saved, i = [], 0
        for kind, a, b in stages:
            if kind == "perm":
                x = x.index_select(1, on_device(a, x.device))
                continue
            for first, k in a.blocks:
                v = _as(x, b)
                saved.append(v)
                x = _back(_apply_block(v, mats[i], first, k, n), x)
                i += 1
        r = _as(x, True)  # complex: the interleaved real view [H, 2^n, 2B]
        ctx.keys, ctx.stages, ctx.n_mats = list(memo), stages, len(mats)
        ctx.save_for_backward(vecs, signs, r, *mats, *saved, *memo.values())
        out = signs.T @ (r * r)  # [H, k, B], or [H, k, 2B] (re^2 and im^2 interleaved)
        return out.view(H, -1, B, 2).sum(-1) if x.is_complex() else out

    @staticmethod
    @first_order
    def backward(ctx, grad):
        vecs, signs, r, *rest = ctx.saved_tensors
        k = ctx.n_mats
        mats, saved, nodes = rest[:k], rest[k:2 * k], rest[2 * k:]
        H, n, _, B = vecs.shape
        complex_state = r.shape[-1] == 2 * B
        if complex_state:  # the same gradient for both parts of an amplitude
            grad = grad.unsqueeze(-1).expand(*grad.shape, 2).reshape(H, -1, 2 * B)
        g = (signs @ grad).mul_(r).mul_(2)  # d|a|^2/da = 2a, per real component
        g = torch.view_as_complex(g.view(H, -1, B, 2)) if complex_state else g
        grad_mats = [None] * k
        i = k
        for kind, a, b in reversed(ctx.stages):
            if kind == "perm":
                g = g.index_select(1, on_device(b, g.device))
                continue
            for first, kq in reversed(a.blocks):
                i -= 1
                gv = _as(g, b)
                if ctx.needs_input_grad[3 + i]:
                    grad_mats[i] = _block_grad(saved[i], gv, first, kq)
                g = _back(_apply_block(gv, mats[i].transpose(-1, -2).conj(), first, kq, n), g)
        grad_vecs = None
        if ctx.needs_input_grad[0]:
            grad_vecs = torch.stack(_kron_tree_grads(list(vecs.unbind(1)), 0, n,
                                                     dict(zip(ctx.keys, nodes)), g), 1)
        return (grad_vecs, None, None, *grad_mats)


def kron_expval(plan: Plan, ctx, vecs: torch.Tensor, dtype, H: int = 1) -> torch.Tensor:
    """Z/I expectation values ``[H, B, k]`` of the plan through ``KronExpval``.

    Args:
        ctx: the angle source of the weights: an AngleContext (H = 1) or StackedAngles.
        vecs: the encoded qubit vectors ``[H * B, n, 2]`` after the prefix's data steps (the
            prefix's trailing weight-only steps are applied here, per circuit).
    """
    stages, sign_gather = kron_stages(plan)
    n, device, real_dtype = plan.n_qubits, vecs.device, ctx.shared.dtype
    vecs = vecs.view(H, -1, n, 2)
    tail = split_prefix(plan)[1]
    pending = steps_product(tail, ctx, real_dtype if all(map(_real_step, tail)) else dtype)
    if pending is not None:  # [n, 2, 2] or [H, n, 2, 2], the same for every token
        pending = pending if pending.dim() == 4 else pending.unsqueeze(0)
        vecs = _apply(pending.unsqueeze(1), vecs)
    complex_state = vecs.is_complex() or not all(s[2] for s in stages if s[0] == "layer")
    vecs = vecs.to(dtype if complex_state else real_dtype)
    mats = block_matrices(stages, ctx, dtype, isinstance(ctx, StackedAngles))
    signs = sign_table(plan.observables, sign_gather, device, real_dtype)  # built once
    out = KronExpval.apply(vecs.permute(0, 2, 3, 1), signs, stages, *mats)  # [H, k, B]
    return out.transpose(1, 2)


def _real_step(step) -> bool:
    return all(gate(name).real for name, _, _ in step.parts)


def kron_cost_us(plan: Plan, batch: int) -> float | None:
    """Estimated forward + backward time of ``kron_expval`` in the units of fused.py's cost
    model (None when the plan does not qualify). Fitted on a 2-core CPU against the dense core
    and gate by gate (``benchmarks/auto_choice.py``): small ops to build the blocks and vectors,
    then per amplitude about 0.6 ns for each real block (0.9 complex), 0.5 ns for each
    permutation and 1 ns for the tree and readout (memory-bound passes at these sizes)."""
    parts = kron_stages(plan)
    if parts is None:
        return None
    steps = len(split_prefix(plan)[1])
    per_amp = 1.0
    for kind, a, real in parts[0]:
        steps += 0 if kind == "perm" else len(a.steps) + len(a.blocks)
        per_amp += 0.5 if kind == "perm" else len(a.blocks) * (0.6 if real else 0.9)
    return (4 + 2 * steps) * LAUNCH_US + batch * 2**plan.n_qubits * per_amp * ELEM_NS / 1e3
