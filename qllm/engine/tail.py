"""BlochTail: the prefix's trailing weight-only gates as one real 4x4 per qubit, backward by hand.

Why: the Heisenberg core (pauli.py) reads each token's qubits as Bloch vectors (1, <X>, <Y>, <Z>).
The weight-only gates after the encoding (e.g. a first RY, RZ layer) act on them as one rotation
per qubit, shared by every token: applied there, the qubit vectors stay real (a real encoding
needs no complex arithmetic), and building the rotations costs a gather, a cos, a sin and the
products instead of some 20 tiny ops gate by gate (40 in autograd's backward).

Each factor of ``FixedMatrix``'s tables (fixed_matrix.py) is a 2x2 U = cos(h) A + sin(h) B; its
Bloch map R_ij = tr(s_i U s_j U^dagger) / 2 (s = I, X, Y, Z) is quadratic in U, so with
theta = 2h it is K + cos(theta) A' + sin(theta) B' for constant real 4x4s: the same table form,
which ``layer_factors`` and ``add_factor_grads`` run. Under ``create_graph=True`` the backward
recomputes under autograd (``recomputed_vjp``): any derivative order.
"""

from __future__ import annotations

import torch

from qllm.engine.encode import split_prefix
from qllm.engine.fixed_matrix import Factors, _factors, add_factor_grads, layer_factors
from qllm.engine.plan import Plan
from qllm.engine.shift import recomputed_vjp

_SIGMA = torch.tensor([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
                      dtype=torch.complex128)


def _pair(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``[i, j] = tr(s_i X s_j Y^dagger) / 2``: the Bloch map of U = X when Y = X."""
    return 0.5 * torch.einsum("iab,bc,jcd,ad->ij", _SIGMA, X, _SIGMA, Y.conj())


def _bloch_factor(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(K, A', B') with bloch(cos(h) A + sin(h) B) = K + cos(2h) A' + sin(2h) B'."""
    aa, bb, ab = _pair(A, A), _pair(B, B), _pair(A, B) + _pair(B, A)
    return ((aa + bb) / 2).real, ((aa - bb) / 2).real, (ab / 2).real


def tail_tables(plan: Plan) -> Factors | None:
    """The Bloch factor tables of the prefix's trailing weight-only steps, cached on the plan
    (None: no such steps, or a gate that is neither a Pauli rotation nor fixed; the Heisenberg
    core then declines a circuit with a tail)."""
    if "tail" not in plan.cache:
        tail = split_prefix(plan)[1] if plan.prefix is not None else []
        per_position = _factors(tail, plan.n_qubits) if tail else None
        plan.cache["tail"] = None if per_position is None else _tables(per_position)
    return plan.cache["tail"]


def _tables(per_position: list[list]) -> Factors:
    D = max(1, *map(len, per_position))
    eye = (0, 0.0, torch.eye(2, dtype=torch.complex128), torch.zeros(2, 2, dtype=torch.complex128))
    slots = [[seq[d] if d < len(seq) else eye for seq in per_position] for d in range(D)]
    mats = [[_bloch_factor(s[2], s[3]) for s in row] for row in slots]  # [D][m] x (K, A', B')
    stack = lambda k: torch.stack([torch.stack([m[k] for m in row]) for row in mats])  # noqa: E731
    return Factors(torch.tensor([[s[0] for s in row] for row in slots]),
                   torch.tensor([[2 * s[1] for s in row] for row in slots], dtype=torch.float64),
                   stack(1), stack(2), any(s[1] for row in slots for s in row), stack(0))


class BlochTail(torch.autograd.Function):
    """Each qubit's Bloch rotation ``[.., n, 4, 4]`` (real ``dtype``) from the shared angle
    vector ``[.., S]``: rows (1, X, Y, Z) after = R @ before."""

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
        grad_shared = grad.new_zeros(shared.shape)
        add_factor_grads(grad_shared, ctx.tables, grad, (cos, sin), factors, running)
        return grad_shared, None, None
