"""TailProduct: each qubit's 2x2 of the prefix's trailing weight-only gates, backward by hand.

Why: the Heisenberg core (pauli.py) applies those gates (e.g. a first RY, RZ layer after the
encoding) to every token's qubit vectors as one 2x2 per qubit. Built gate by gate under
autograd, the 2x2s cost some 20 tiny ops forward and 40 backward; from ``FixedMatrix``'s factor
tables (fixed_matrix.py: factor = cos(h) A + sin(h) B) they are a gather, a cos, a sin and the
products, and the backward peels the products. Under ``create_graph=True`` it recomputes under
autograd (``recomputed_vjp``): any derivative order.
"""

from __future__ import annotations

import torch

from qllm.engine.encode import split_prefix
from qllm.engine.fixed_matrix import Factors, add_factor_grads, factor_tables, layer_factors
from qllm.engine.plan import Plan
from qllm.engine.shift import recomputed_vjp


def tail_tables(plan: Plan) -> Factors | None:
    """The factor tables of the prefix's trailing weight-only steps, cached on the plan (None:
    no such steps, or a gate that is neither a Pauli rotation nor fixed)."""
    if "tail" not in plan.cache:
        tail = split_prefix(plan)[1] if plan.prefix is not None else []
        plan.cache["tail"] = factor_tables(tail, plan.n_qubits) if tail else None
    return plan.cache["tail"]


class TailProduct(torch.autograd.Function):
    """``[.., n, 2, 2]`` in the complex ``dtype`` from the shared angle vector ``[.., S]``."""

    @staticmethod
    def forward(ctx, shared, tables: Factors, dtype):
        cos, sin, factors, running = layer_factors(tables, shared, dtype)
        ctx.tables, ctx.dtype = tables, dtype
        ctx.save_for_backward(shared, cos, sin, factors, *running)
        return running[-1]

    @staticmethod
    def backward(ctx, grad):
        shared, cos, sin, factors, *running = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True
            product = lambda s: layer_factors(ctx.tables, s, ctx.dtype)[3][-1]  # noqa: E731
            return (*recomputed_vjp(product, (shared,), (grad,), ctx.needs_input_grad), None, None)
        grad_shared = grad.real.new_zeros(shared.shape)
        add_factor_grads(grad_shared, ctx.tables, grad, (cos, sin), factors, running)
        return grad_shared, None, None
