"""Hand-written backwards by the parameter-shift rule: the weight matrix and the encoded vectors
of the product-state core (product.py).

Why: building a small circuit's weight matrix takes a few dozen tiny ops, and autograd's backward
through them costs about twice their forward (at 5-10 us per op this was most of a 6-qubit
step). For Pauli rotations (RX, RY, RZ, Rot; ``GateDef.shift_rule``) every derivative is another
evaluation, dR/dtheta = R(theta + pi) / 2, so the forward also evaluates each single-qubit 2x2
at every angle shifted by pi (one batch: the same ops, a few more rows) and the backward only
contracts:

- ``FixedMatrix``: M = K_1 P_1 K_2 P_2 ... (K_l = kron of a layer's 2x2s, P_l permutations).
  With G = dL/dK_l, factor q's gradient is f_q tr_(not q)(K_l^H G) since the other factors are
  unitary, and K_l^H G = (K_1 .. K_l)^H dL/dM (P_l ..)^H is one matrix product with a product
  the forward kept; per layer two matrix products, one gather and a few 2x2 products.
- ``DataVectors``: each qubit's encoded 2-vector; row r shifts every qubit's r-th data angle at
  once (a qubit's vector depends on its own angles only).

Only dense segments qualify (n <= SHIFT_QUBITS; permutations and single-qubit layers of
shift-rule or parameter-free gates) and encodings whose every angle reads data through a
shift-rule gate; ``core_parts`` says None otherwise, and those parts run on plain autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.autograd.function import once_differentiable

from qllm.engine.apply import layer_matrices
from qllm.engine.encode import prefix_vectors, split_prefix
from qllm.engine.fused import layer_kron, unrotation
from qllm.engine.micro import LAUNCH_US, MATMUL_NS, Layer, Perm, Step
from qllm.engine.plan import Plan, on_device
from qllm.errors import BackendError
from qllm.gates import gate

# FixedMatrix keeps a few 2^n x 2^n matrices per layer (16 MiB each at 10 qubits, complex128);
# the cost model (core_cost_us) decides whether the core pays.
SHIFT_QUBITS = 10


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


class ShiftedAngles:
    """Angles of some steps at the base point (row 0) and with angles shifted by pi (rows r >= 1),
    as a source that quacks like an AngleContext whose batch is the rows (times the tokens).

    Weights (``per_qubit=False``): one row per weight angle; constants are not shifted. Data
    (``per_qubit=True``, a product-state prefix): row r shifts the r-th data angle of every
    qubit at once, since each qubit's vector depends on its own angles only.
    """

    def __init__(self, steps: list[Step], n_weights: int, per_qubit: bool = False):
        self.groups = [g for step in steps for _, g, _ in step.parts if g is not None]
        self.rows: dict[int, list[int]] = {}  # per group: each angle's shift row (0: none)
        # per shifted angle: its row, source (weight or data column), scale, position in u
        self.row, self.source, self.scale, self.position = [], [], [], []
        counts: dict[int, int] = {}
        for step in steps:
            for _, group, positions in step.parts:
                if group is None:
                    continue
                rows = []
                for j, ((data, i), s) in enumerate(zip(group.slots, group.scale_values)):
                    p = positions[j // group.shape[1]]
                    if not (data if per_qubit else i < n_weights):  # constants: no derivative
                        rows.append(0)
                        continue
                    counts[p] = counts.get(p, 0) + 1
                    rows.append(counts[p] if per_qubit else len(self.row) + 1)
                    self.row.append(rows[-1])
                    self.source.append(i)
                    self.scale.append(s)
                    self.position.append(p)
                self.rows[id(group)] = rows
        self.R = 1 + max(self.row, default=0)
        self._tables: dict = {}

    def bind(self, values: torch.Tensor) -> _Bound:
        """An AngleContext stand-in over ``values``: the shared vector ``[S]``, or the data
        columns ``[B, D]``."""
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
        base = values[..., t["index"][id(group)]]  # [E] or [B, E]
        base = base if group.unit_scale else base * scale
        shift = t["shift"][id(group)]  # [R, E]
        out = base + (shift if base.dim() == 1 else shift[:, None, :])
        return out.view(rows, *group.shape)

    def contract(self, grad: torch.Tensor, derivs: torch.Tensor) -> torch.Tensor:
        """Scatter each shifted angle's derivative to its source: ``derivs [A, ...]`` per
        shifted angle (Re <dL/du, du/dangle>, leading dims as the values' batch)."""
        t = self.tables(derivs.device, grad.dtype)
        scale = t["scale"].view(-1, *[1] * (derivs.dim() - 1))
        return grad.index_add_(-1, t["source"], (derivs * scale).movedim(0, -1))


class _Bound:
    """``ShiftedAngles`` over given values, with the AngleContext interface the step code reads
    (``angles``, ``B``: the shift rows times the tokens, ``shared``: device and dtype)."""

    def __init__(self, shifted: ShiftedAngles, values: torch.Tensor):
        self.shifted, self.shared = shifted, values
        self.B = shifted.R * (values.shape[0] if values.dim() == 2 else 1)

    def angles(self, group) -> torch.Tensor:
        return self.shifted.angles(group, self.shared, self.B)


def _shift_rule(steps: list[Step], data: bool) -> bool:
    """Every angle-reading gate obeys the shift rule and reads data (``data``) or no data."""
    return all(group is None or (gate(name).shift_rule and group.data == data
                                 and (not data or all(d for d, _ in group.slots)))
               for step in steps for name, group, _ in step.parts)


@dataclass
class LayerStage:
    """A layer of ``FixedMatrix`` with its index tables (CPU; copied to a device once)."""

    layer: Layer
    shifted: ShiftedAngles
    qubits: torch.Tensor  # the layer's qubits: they pick its partial traces
    rows: torch.Tensor | None  # first layer only: the leading permutations' gather ...
    inverse_rows: torch.Tensor | None  # ... and its inverse (M = K[inverse_rows])
    cols: torch.Tensor | None  # rotated layers: the matrix's column order ...
    inverse_cols: torch.Tensor | None  # ... and its inverse


def fixed_stages(plan: Plan, tail: list[Step]) -> list | None:
    """The fixed part after the data prefix, as stages for ``FixedMatrix``: ``tail`` (the
    prefix's trailing weight-only steps, as a layer over all qubits), then the micro-ops of the
    plan's single fixed segment (leading permutations folded into the first layer's rows).
    None unless every stage qualifies (see the module docstring)."""
    n = plan.n_qubits
    if n > SHIFT_QUBITS or len(plan.segments) != 1:
        return None
    micros = list(plan.segments[0].micros)
    if tail:
        micros.insert(0, Layer(list(range(n)), steps=tail))
    stages, rows = [], torch.arange(2**n)
    for m in micros:
        if isinstance(m, Perm):
            if stages:
                stages.append(m)
            else:
                rows = rows[m.gather]
        elif isinstance(m, Layer) and _shift_rule(m.steps, data=False):
            first = not stages
            cols = unrotation(m, n, "cpu")
            stages.append(LayerStage(
                m, ShiftedAngles(m.steps, plan.sources.n_weights), torch.tensor(m.qubits),
                rows if first else None, torch.argsort(rows) if first else None,
                cols, None if cols is None else torch.argsort(cols)))
        else:
            return None
    return stages or None


def data_shifts(plan: Plan, head: list[Step]) -> ShiftedAngles | None:
    """Shifted data angles for ``DataVectors`` when every angle of the prefix ``head`` reads
    data through a shift-rule gate (None otherwise)."""
    if not _shift_rule(head, data=True):
        return None
    shifted = ShiftedAngles(head, plan.sources.n_weights, per_qubit=True)
    return shifted if shifted.R > 1 else None


def core_cost_us(stages: list, n: int, batch: int) -> float:
    """Estimated forward + backward time of ``FixedMatrix`` and the core's three B x 2^n x 2^n
    products, in the units of fused.py's cost model. Fitted on this 2-core CPU (n = 4..10,
    B = 64..16384; ``benchmarks/auto_choice.py``): the layers' small ops cost about 0.3 of
    their autograd build; the first layer adds one 2^n-cubed product and each later one three,
    at half the model's rate per multiply-add; the three batch products cost about 0.4 B 4^n
    multiply-adds, a seventh of the autograd fused path's (real product states, no conjugated
    copies, and at these sizes memory-bound rather than compute-bound)."""
    layers = [s for s in stages if isinstance(s, LayerStage)]
    dim = 2**n
    launches = sum(4 * len(s.layer.steps) + 2 * n for s in layers) * LAUNCH_US
    cubes = (3 * len(layers) - 2) * dim**3
    return 0.3 * launches + (0.5 * cubes + 0.4 * batch * dim * dim) * MATMUL_NS / 1e3 \
        + 3 * LAUNCH_US


def core_parts(plan: Plan) -> tuple:
    """(the prefix steps that read data, their ``data_shifts``, the ``fixed_stages`` of the
    rest), cached on the plan; a None means that part runs on plain autograd."""
    if "core" not in plan.cache:
        head, tail = split_prefix(plan) if plan.prefix is not None else ([], [])
        plan.cache["core"] = head, data_shifts(plan, head), fixed_stages(plan, tail)
    return plan.cache["core"]


@lru_cache(maxsize=32)
def _trace_index(n: int) -> torch.Tensor:
    """Flat indices ``[n, 2, 2, 2^(n-1)]`` into a ``[2^n, 2^n]`` matrix Y: entry (q, a, b, x) is
    Y[(a on qubit q, x elsewhere), (b on qubit q, x elsewhere)]; summing over x gives the 2x2
    partial traces over all qubits but q."""
    x = torch.arange(2 ** (n - 1))
    out = []
    for q in range(n):
        shift = n - 1 - q
        base = (x >> shift << (shift + 1)) | (x & ((1 << shift) - 1))
        rows = torch.stack([base, base | (1 << shift)])  # [2, 2^(n-1)]
        out.append(rows[:, None, :] * 2**n + rows[None, :, :])
    return torch.stack(out)


def _adjoint(m: torch.Tensor) -> torch.Tensor:
    return m.transpose(-1, -2).conj()


class FixedMatrix(torch.autograd.Function):
    """``M`` ``[2^n, 2^n]`` (``state @ M`` applies the stages) from the shared angle vector
    ``[S]``; from ``[H, S]`` (H circuits of one spec, each its own weights), ``[H, 2^n, 2^n]``.

    Backward of a layer K = kron(f_q) (f_q = u_q^T unitary) given dL/dK = G: the gradient of
    factor q is f_q tr_(not q)(K^H G) (unitarity removes the other factors), a gather for all
    qubits; K^H G = (M_before K)^H dL/dM is one matrix product with the saved forward product.
    Each angle's gradient is then Re <dL/du_q, u_q(theta + pi) / 2>.
    """

    @staticmethod
    def forward(ctx, shared, stages, n, dtype):
        device, lead = shared.device, shared.shape[:-1]  # () or (H,)
        M, saved = None, []
        for stage in stages:
            if isinstance(stage, Perm):  # M_new = M[:, gather]
                M = M[..., on_device(stage.gather, device)]
                continue
            u_all = layer_matrices(stage.layer, stage.shifted.bind(shared), dtype).to(dtype)
            if u_all.dim() == 3:  # parameter-free layer: [q, 2, 2]
                u_all = u_all.expand(stage.shifted.R, *lead, *u_all.shape)
            u_all = u_all.reshape(stage.shifted.R, *lead, *u_all.shape[-3:])  # [R, .., q, 2, 2]
            k_raw = layer_kron(stage.layer, u_all[0], n)
            # M before the layer's column order: its adjoint turns dL/dM into K^H dL/dK
            M = k_raw[..., on_device(stage.inverse_rows, device), :] if M is None else M @ k_raw
            saved.append((M, k_raw, u_all))
            if stage.cols is not None:
                M = M[..., on_device(stage.cols, device)]
        # through save_for_backward (not ctx attributes), so torch.utils.checkpoint frees them
        ctx.save_for_backward(*(t for layer in saved for t in layer))
        ctx.stages, ctx.shape, ctx.n = stages, shared.shape, n
        return M

    @staticmethod
    @first_order
    def backward(ctx, grad):
        grad_shared = grad.new_zeros(ctx.shape, dtype=grad.real.dtype)
        flat = ctx.saved_tensors
        device, saved = grad.device, [flat[i:i + 3] for i in range(0, len(flat), 3)]
        for stage in reversed(ctx.stages):
            if isinstance(stage, Perm):
                grad = grad[..., on_device(stage.inverse, device)]
                continue
            m_raw, k_raw, u_all = saved.pop()
            if stage.cols is not None:
                grad = grad[..., on_device(stage.inverse_cols, device)]
            grad_m = grad
            if stage.rows is None:  # not the first layer: dL/dM_before = dL/dM K^H
                grad = grad @ _adjoint(k_raw)
            if stage.shifted.R == 1:
                continue  # nothing to differentiate
            y = (_adjoint(m_raw) @ grad_m).flatten(-2)  # K^H dL/dK = (M_before K)^H dL/dM
            trace = y[..., on_device(_trace_index(ctx.n), device)].sum(-1)  # [.., n, 2, 2]
            u = u_all[0]  # [.., q, 2, 2]
            grad_u = u.transpose(-1, -2) @ trace[..., on_device(stage.qubits, device), :, :]
            t = stage.shifted.tables(device, grad_shared.dtype)
            du = u_all.movedim(-3, 1)[t["row"], t["position"]]  # [A, .., 2, 2] at the shifted angle
            grad_du = grad_u[..., t["position"], :, :].movedim(-3, 0)  # transposed, [A, .., 2, 2]
            derivs = (grad_du.transpose(-1, -2).conj() * du).real.sum((-1, -2))
            stage.shifted.contract(grad_shared, derivs * 0.5)
        return grad_shared, None, None, None


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
