"""The product-state prefix in Bloch form: each token's qubits as rows (1, <X>, <Y>, <Z>).

Why: the Heisenberg core (pauli.py) reads only these rows, and in Bloch form the prefix is real
and short:

- the weight-only tail after the encoding (e.g. a first RY, RZ layer) is one 4x4 rotation per
  qubit, shared by every token (``BlochTail``, backward by hand);
- an encoding of one data rotation per qubit (with any fixed gates around it) gives rows that are
  linear in (1, cos x, sin x): rows = M @ features with a constant M ``[n, 4, 3]`` (``head_table``),
  so the batch part of the prefix is a cos, a sin and one matrix product, the tail folded into M.
Other encodings run their 2-vectors (encode.py) and take ``bloch`` of them.

Each factor of ``FixedMatrix``'s tables (fixed_matrix.py) is a 2x2 U = cos(h) A + sin(h) B; its
Bloch map R_ij = tr(s_i U s_j U^dagger) / 2 (s = I, X, Y, Z) is quadratic in U, so with
theta = 2h it is K + cos(theta) A' + sin(theta) B' for constant real 4x4s: the same table form,
which ``layer_factors`` and ``add_factor_grads`` run. Under ``create_graph=True`` the backward
recomputes under autograd (``recomputed_vjp``): any derivative order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qllm.engine.encode import prefix_vectors, split_prefix
from qllm.engine.fixed_matrix import Factors, add_factor_grads, factor_tables, layer_factors
from qllm.engine.pauli_walk import ROTATIONS
from qllm.engine.plan import Plan
from qllm.engine.shift import recomputed_vjp
from qllm.gates import gate

_SIGMA = torch.tensor([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
                      dtype=torch.complex128)
_EYE = torch.eye(2, dtype=torch.complex128)


def bloch(vecs: torch.Tensor) -> torch.Tensor:
    """Qubit states ``[..., 2, B]`` -> ``[..., 4, B]``: (1, <X>, <Y>, <Z>) per qubit."""
    a, b = vecs[..., 0, :], vecs[..., 1, :]
    if vecs.is_complex():
        xy = 2 * torch.view_as_real(a.conj() * b)  # [..., B, 2]: <X>, <Y>
        x, y = xy[..., 0], xy[..., 1]
        p = torch.view_as_real(vecs).square().sum(-1)  # [..., 2, B]: |a|^2, |b|^2
        z = p[..., 0, :] - p[..., 1, :]
    else:
        x, y, z = 2 * a * b, torch.zeros_like(a), a * a - b * b
    return torch.stack([torch.ones_like(z), x, y, z], -2)


def _pair(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``[.., i, j] = tr(s_i X s_j Y^dagger) / 2`` for 2x2s ``[.., 2, 2]``: the Bloch map of
    U = X when Y = X."""
    return 0.5 * torch.einsum("iab,...bc,jcd,...ad->...ij", _SIGMA, X, _SIGMA, Y.conj())


def _bloch_factor(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(K, A', B') with bloch(cos(h) A + sin(h) B) = K + cos(2h) A' + sin(2h) B' (any leading
    dims)."""
    aa, bb, ab = _pair(A, A), _pair(B, B), _pair(A, B) + _pair(B, A)
    return ((aa + bb) / 2).real, ((aa - bb) / 2).real, (ab / 2).real


def tail_tables(plan: Plan) -> Factors | None:
    """The Bloch factor tables of the prefix's trailing weight-only steps (``FixedMatrix``'s
    2x2 tables mapped by ``_bloch_factor``), cached on the plan (None: no such steps, or a gate
    that is neither a Pauli rotation nor fixed; the Heisenberg core then declines a circuit
    with a tail)."""
    if "tail" not in plan.cache:
        tail = split_prefix(plan)[1] if plan.prefix is not None else []
        f = factor_tables(tail, plan.n_qubits) if tail else None
        plan.cache["tail"] = None if f is None else _bloch_tables(f)
    return plan.cache["tail"]


def _bloch_tables(f: Factors) -> Factors:
    """``f``'s 2x2 factors cos(h) A + sin(h) B as Bloch maps of theta = 2h."""
    K, A, B = _bloch_factor(f.A, f.B)
    return Factors(f.source, 2 * f.scale, A, B, f.trainable, K)


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


@dataclass
class HeadTable:
    """An encoding of at most one data rotation per qubit: rows = M @ (1, cos t, sin t) with
    t = mult * data column ``column`` (a qubit without data: mult 0, M's last columns 0)."""

    M: torch.Tensor  # [n, 4, 3] float64
    column: torch.Tensor  # [n] each qubit's data column
    mult: torch.Tensor  # [n] float64
    _tables: dict = field(default_factory=dict)

    def __post_init__(self):
        # qubit q reads column q at scale 1 (the plain angle encoding): no gather, no product
        self.direct = self.column.tolist() == list(range(len(self.column)))
        self.unit = bool((self.mult == 1).all())

    def tables(self, device, dtype) -> tuple[torch.Tensor, ...]:
        key = (device, dtype)
        if key not in self._tables:
            self._tables[key] = (self.M.to(device, dtype), self.column.to(device),
                                 self.mult.to(device, dtype))
        return self._tables[key]


def head_table(plan: Plan) -> HeadTable | None:
    """The encoding's ``HeadTable``, cached on the plan; None when a qubit reads two data
    angles, or a weight, before the tail."""
    if "bloch_head" not in plan.cache:
        plan.cache["bloch_head"] = _head_table(plan) if plan.prefix is not None else None
    return plan.cache["bloch_head"]


def _head_table(plan: Plan) -> HeadTable | None:
    n, sources = plan.n_qubits, plan.sources
    rows = [[torch.tensor([1.0, 0, 0, 1], dtype=torch.float64)] for _ in range(n)]  # |0>
    column, mult = [0] * n, [0.0] * n
    for step in split_prefix(plan)[0]:
        for name, group, positions in step.parts:
            g = gate(name)
            for j, q in enumerate(positions):  # the prefix's layer is every qubit, in order
                if not g.n_params:
                    u = g.matrix(torch.zeros(0, dtype=torch.float64)).to(torch.complex128)
                    R = _pair(u, u).real
                    rows[q] = [R @ r for r in rows[q]]
                    continue
                for letter, p, a in ROTATIONS[name]:  # time order
                    data, index = group.slots[j * g.n_params + p]
                    scale = a * group.scale_values[j * g.n_params + p]
                    K, A, B = _bloch_factor(_EYE, -1j * _SIGMA["IXYZ".index(letter)])
                    if data:
                        if len(rows[q]) > 1:  # a second data angle on this qubit
                            return None
                        rows[q] = [K @ rows[q][0], A @ rows[q][0], B @ rows[q][0]]
                        column[q], mult[q] = index, scale
                    elif index < sources.n_weights:  # a weight before the tail
                        return None
                    else:  # a constant angle: a fixed rotation
                        t = torch.tensor(scale * sources.consts[index - sources.n_weights],
                                         dtype=torch.float64)
                        rows[q] = [(K + t.cos() * A + t.sin() * B) @ r for r in rows[q]]
    if all(len(r) == 1 for r in rows):  # nothing reads data: the 2-vector route expands it
        return None
    zero = torch.zeros(4, dtype=torch.float64)
    M = torch.stack([torch.stack(r + [zero] * (3 - len(r)), -1) for r in rows])
    return HeadTable(M, torch.tensor(column), torch.tensor(mult, dtype=torch.float64))


def bloch_rows(plan: Plan, shared: torch.Tensor, data, dtype, H: int) -> torch.Tensor:
    """Each token's qubits after the whole prefix, as Bloch rows ``[H, n, 4, B]``.

    Args:
        shared: the shared angle vectors ``[H, S]`` (the tail's weights).
        data: the AngleContext of the ``H * B`` tokens (the encoding's data columns).
        dtype: the complex dtype of the 2-vector route (encodings ``head_table`` declines).
    """
    tables, head = tail_tables(plan), head_table(plan)
    R = None if tables is None else BlochTail.apply(shared, tables, shared.dtype)  # [H, n, 4, 4]
    if head is None:  # the encoding's 2-vectors, then their Bloch rows
        vecs = prefix_vectors(plan, data, dtype, split_prefix(plan)[0])[0]  # [H * B, n, 2]
        rows = bloch(vecs.view(H, -1, plan.n_qubits, 2).permute(0, 2, 3, 1))
        return rows if R is None else R @ rows
    M = head.tables(shared.device, shared.dtype)[0]
    t = head_angles(plan, data, H)
    cos = t.cos()
    features = torch.stack([torch.ones_like(cos), cos, t.sin()], 2)  # [H, n, 3, B]
    return (M if R is None else R @ M) @ features


def head_angles(plan: Plan, data, H: int) -> torch.Tensor:
    """A ``head_table`` encoding's data angle on each qubit ``[H, n, B]``."""
    n, head, t = plan.n_qubits, head_table(plan), data.data_columns()
    _, column, mult = head.tables(t.device, t.dtype)
    t = t if head.direct and t.shape[1] == n else t[:, column]
    return (t if head.unit else t * mult).view(H, -1, n).transpose(1, 2)
