"""FeatureCore: the Heisenberg core of a ``head_table`` circuit as one autograd node.

Why: at the sizes this route takes (pauli_features.py) the run time is the op count, forward
and backward, not the arithmetic. The paths' coefficients (a gather and a product of the
weights' cos and sin), their scatter into the readout tensor T and the batch part run as one
node whose backward is written out: about half the ops autograd would run, and one node in the
graph. ``create_graph=True`` recomputes the forward under autograd and differentiates that, so
the core stays differentiable to any order.
"""

from __future__ import annotations

import torch

from qllm.engine.pauli_features import FeatureProgram, batch_backward, batch_forward
from qllm.engine.pauli_walk import path_factors
from qllm.engine.shift import recomputed_vjp


def _table(shared: torch.Tensor, c: FeatureProgram) -> tuple:
    """T ``[H, k 3^(n-s), 3^s]`` from the shared angles ``[H, S]``, and the parts the
    backward reads."""
    H = shared.shape[0]
    picked, cos, sin = path_factors(shared, c.inst_slot, c.inst_mult, c.factors, c.n_paths,
                                    c.depth)  # [H, P, D]
    trig_part = picked.prod(-1)  # [H, P]: each path's coefficient over its constant
    terms = (trig_part if c.path is None else trig_part.index_select(1, c.path)) * c.scale
    T = terms.new_zeros(H, c.k * 3**c.n).index_add_(1, c.slot, terms)
    return T.view(H, -1, 3**c.s), (cos, sin, picked)


def _table_grads(g_T: torch.Tensor, saved: tuple, c: FeatureProgram, shape) -> torch.Tensor:
    """dL/dshared ``shape`` from dL/dT."""
    cos, sin, picked = saved
    grad_shared = g_T.new_zeros(shape)
    if c.depth == 0:  # no path reads a weight
        return grad_shared
    g_terms = g_T.flatten(1).index_select(1, c.slot) * c.scale  # [H, E]
    g_part = g_terms if c.path is None else g_terms.new_zeros(picked.shape[:2]).index_add_(
        1, c.path, g_terms)
    ones = picked.new_ones(*picked.shape[:2], 1)
    before = torch.cat([ones, picked[..., :-1]], -1).cumprod(-1)  # the factors before each
    after = torch.cat([picked[..., 1:], ones], -1).flip(-1).cumprod(-1).flip(-1)
    g_picked = g_part.unsqueeze(-1) * before * after  # [H, P, D]
    R = cos.shape[1]
    g_trig = g_T.new_zeros(g_T.shape[0], 1 + 2 * R).index_add_(1, c.factors, g_picked.flatten(1))
    g_angles = g_trig[:, 1 + R:] * cos - g_trig[:, 1:1 + R] * sin
    g_angles = g_angles if c.inst_mult is None else g_angles * c.inst_mult
    return grad_shared.index_add_(1, c.inst_slot, g_angles)


def _forward(shared: torch.Tensor, t: torch.Tensor, c: FeatureProgram) -> tuple:
    T, table_saved = _table(shared, c)
    out, batch_saved, keys = batch_forward(T, t, c)
    return out, table_saved, batch_saved, keys


class FeatureCore(torch.autograd.Function):
    """Shared angles ``[H, S]``, data angles ``[H, n, B]`` -> ``[H, k, B]``."""

    @staticmethod
    def forward(ctx, shared, t, program: FeatureProgram):
        out, table_saved, batch_saved, ctx.keys = _forward(shared, t, program)
        ctx.program, ctx.shape, ctx.n_table = program, shared.shape, len(table_saved)
        # through save_for_backward (not ctx attributes), so torch.utils.checkpoint frees them
        ctx.save_for_backward(shared, t, *table_saved, *batch_saved)
        return out

    @staticmethod
    def backward(ctx, grad):
        shared, t, *saved = ctx.saved_tensors
        c = ctx.program
        if torch.is_grad_enabled():  # create_graph=True: differentiate the forward again
            fwd = lambda sh, x: _forward(sh, x, c)[0]  # noqa: E731
            return (*recomputed_vjp(fwd, (shared, t), (grad,), ctx.needs_input_grad), None)
        need_w, need_t = ctx.needs_input_grad[:2]
        g_T, g_t = batch_backward(tuple(saved[ctx.n_table:]), ctx.keys, grad, c, need_t)
        g_w = _table_grads(g_T, tuple(saved[:ctx.n_table]), c, ctx.shape) if need_w else None
        return g_w, g_t, None
