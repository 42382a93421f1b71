"""Hand-written backward by the parameter-shift rule for the encoded vectors of the
product-state core (product.py); the core's weight matrix has its own (fixed_matrix.py).

Why: autograd's backward through the encoding's tiny ops costs about twice their forward (at 5-10
us per op). For Pauli rotations (RX, RY, RZ, Rot; ``GateDef.shift_rule``) every derivative is
another evaluation, dR/dtheta = R(theta + pi) / 2, so the forward also evaluates each qubit's
2-vector at every data angle shifted by pi (one batch: the same ops, a few more rows) and the
backward only contracts. ``DataVectors``: row r shifts every qubit's r-th data angle at once (a
qubit's vector depends on its own angles only). Encodings whose every angle reads data through a
shift-rule gate qualify; ``data_shifts`` says None otherwise, and they run on plain autograd.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from qllm.engine.encode import prefix_vectors
from qllm.engine.micro import Step
from qllm.engine.plan import Plan
from qllm.errors import BackendError
from qllm.gates import gate


def first_order(backward):
    """Mark a hand-written backward first-order only, with an error that names the way out when
    a second derivative is asked for (``create_graph=True``)."""

    @once_differentiable
    def wrapped(ctx, *grads):
        return backward(ctx, *grads)

    def check(ctx, *grads):
        if torch.is_grad_enabled():  # a backward with create_graph=True
            raise BackendError("the product-state core (strategy 'auto' or 'core') computes "
                               "first derivatives only (a hand-written backward); for higher "
                               "derivatives use strategy='fused' or 'gates'")
        return wrapped(ctx, *grads)

    return check


def recomputed_vjp(forward, inputs: tuple, grads: tuple, needs) -> tuple:
    """A hand-written backward's way to higher derivatives: under ``create_graph=True``,
    ``forward(*inputs)`` again under autograd and its vector-Jacobian product with a graph
    (None for the inputs that need no gradient)."""
    with torch.enable_grad():
        out = forward(*inputs)
    out = out if isinstance(out, tuple) else (out,)
    wanted = [t for t, need in zip(inputs, needs) if need]
    found = iter(torch.autograd.grad(out, wanted, grads, create_graph=True))
    return tuple(next(found) if need else None for need in needs[:len(inputs)])


class ShiftedAngles:
    """The data angles of a product-state prefix at the base point (row 0) and shifted by pi
    (rows r >= 1: the r-th data angle of every qubit at once), as a source that quacks like an
    AngleContext whose batch is the rows times the tokens. Weights and constants are not
    shifted (the weight matrix differentiates them)."""

    def __init__(self, steps: list[Step]):
        self.groups = [g for step in steps for _, g, _ in step.parts if g is not None]
        self.rows: dict[int, list[int]] = {}  # per group: each angle's shift row (0: none)
        # per shifted angle: its row, source (data column), scale, position in u
        self.row, self.source, self.scale, self.position = [], [], [], []
        counts: dict[int, int] = {}
        for step in steps:
            for _, group, positions in step.parts:
                if group is None:
                    continue
                rows = []
                for j, ((data, i), s) in enumerate(zip(group.slots, group.scale_values)):
                    p = positions[j // group.shape[1]]
                    if not data:
                        rows.append(0)
                        continue
                    counts[p] = counts.get(p, 0) + 1
                    rows.append(counts[p])
                    self.row.append(rows[-1])
                    self.source.append(i)
                    self.scale.append(s)
                    self.position.append(p)
                self.rows[id(group)] = rows
        self.R = 1 + max(self.row, default=0)
        self._tables: dict = {}

    def bind(self, values: torch.Tensor) -> _Bound:
        """An AngleContext stand-in over the data columns ``values [B, D]``."""
        return _Bound(self, values)

    def tables(self, device, dtype) -> dict:
        """Per group: its pi shifts ``[R, E]`` and source indices; per shifted angle: row,
        source, position in u and scale."""
        key = (device, dtype)
        if key not in self._tables:
            t = {"shift": {}, "index": {}}
            for g in self.groups:
                e = torch.zeros(self.R, len(self.rows[id(g)]), dtype=dtype)
                for j, r in enumerate(self.rows[id(g)]):
                    if r:
                        e[r, j] = math.pi
                t["shift"][id(g)] = e.to(device)
                t["index"][id(g)] = torch.tensor([i for _, i in g.slots], device=device)
            for name in ("row", "source", "position"):
                t[name] = torch.tensor(getattr(self, name), dtype=torch.long, device=device)
            t["scale"] = torch.tensor(self.scale, dtype=dtype, device=device)
            self._tables[key] = t
        return self._tables[key]

    def angles(self, group, values: torch.Tensor, rows: int) -> torch.Tensor:
        """``[rows, m, P]``: the group's angles from ``values``, every shift row stacked."""
        t = self.tables(values.device, values.dtype)
        _, scale = group.tensors(values.device, values.dtype)
        base = values[:, t["index"][id(group)]]  # [B, E]
        base = base if group.unit_scale else base * scale
        return (base + t["shift"][id(group)][:, None, :]).view(rows, *group.shape)

    def contract(self, grad: torch.Tensor, derivs: torch.Tensor) -> torch.Tensor:
        """Scatter each shifted angle's derivative to its data column: ``derivs [A, B]`` per
        shifted angle (Re <dL/du, du/dangle>)."""
        t = self.tables(derivs.device, grad.dtype)
        scale = t["scale"].view(-1, *[1] * (derivs.dim() - 1))
        return grad.index_add_(-1, t["source"], (derivs * scale).movedim(0, -1))


class _Bound:
    """``ShiftedAngles`` over given values, with the AngleContext interface the step code reads
    (``angles``, ``B``: the shift rows times the tokens, ``shared``: device and dtype)."""

    def __init__(self, shifted: ShiftedAngles, values: torch.Tensor):
        self.shifted, self.shared = shifted, values
        self.B = shifted.R * values.shape[0]

    def angles(self, group) -> torch.Tensor:
        return self.shifted.angles(group, self.shared, self.B)


def _shift_rule(steps: list[Step], data: bool) -> bool:
    """Every angle-reading gate obeys the shift rule and reads data (``data``) or no data."""
    return all(group is None or (gate(name).shift_rule and group.data == data
                                 and (not data or all(d for d, _ in group.slots)))
               for step in steps for name, group, _ in step.parts)


def data_shifts(plan: Plan, head: list[Step]) -> ShiftedAngles | None:
    """Shifted data angles for ``DataVectors`` when every angle of the prefix ``head`` reads
    data through a shift-rule gate (None otherwise)."""
    if not _shift_rule(head, data=True):
        return None
    shifted = ShiftedAngles(head)
    return shifted if shifted.R > 1 else None


class DataVectors(torch.autograd.Function):
    """The product-state prefix ``[B, n, 2]`` from the data columns ``[B, D]``; its backward is
    one contraction per shift row: d v_q / d angle = v_q(angle + pi) / 2."""

    @staticmethod
    def forward(ctx, columns, shifted, plan, head, dtype):
        B = columns.shape[0]
        vecs = prefix_vectors(plan, shifted.bind(columns), dtype, head)[0]
        vecs = vecs.reshape(shifted.R, B, plan.n_qubits, 2)
        ctx.shifted, ctx.shape = shifted, columns.shape
        ctx.save_for_backward(vecs)
        return vecs[0]

    @staticmethod
    @first_order
    def backward(ctx, grad):
        (vecs,), shifted = ctx.saved_tensors, ctx.shifted
        t = shifted.tables(grad.device, grad.real.dtype)
        # Re <dL/dv_q, v_q(shifted)> / 2 for every row, token and qubit: [R - 1, B, n]
        d = (grad.conj().unsqueeze(0) * vecs[1:]).real.sum(-1) * 0.5
        derivs = d[t["row"] - 1, :, t["position"]]  # [A, B]
        grad_columns = grad.new_zeros(ctx.shape, dtype=grad.real.dtype)
        return shifted.contract(grad_columns, derivs), None, None, None, None
