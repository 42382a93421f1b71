"""The product-state core's weight matrix M, with a hand-written backward.

M = K_1 P_1 K_2 P_2 ... (``state @ M`` applies the fixed part): K_l is the Kronecker product of
a layer's per-qubit 2x2s, P_l a permutation. Why by hand: a small circuit's M costs a few dozen
tiny ops, and autograd's backward through them (complex products, broadcast reductions) about
twice their forward; at 5-10 us per op that was most of a 6-qubit step.

Each layer's 2x2s are products of elementary factors, every one either a Pauli rotation
exp(-i theta P / 2) = cos(theta / 2) I - i sin(theta / 2) P (RX, RY, RZ, and Rot, U3 and
PhaseShift by their decompositions, ``ROTATIONS``; global phases do not change probabilities)
or a fixed matrix (H, S, X...). So one table per layer holds, for every factor slot, its angle's
source and half-scale and the two matrices A, B with factor = cos(h) A + sin(h) B: a layer's
factors are built by one gather, one cos, one sin and two products, whatever gates it mixes.

Backward of a layer K = kron(f_q) given G = dL/dK: factor q's gradient is f_q tr_(not q)(K^H G)
(the other factors are unitary), a gather for all qubits, and K^H G = (M_before K)^H dL/dM is one
matrix product with the product the forward kept; then back through each qubit's product of
factors and dfactor/dh = -sin(h) A + cos(h) B.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch

from qllm.engine.encode import split_prefix
from qllm.engine.fused import layer_kron, unrotation
from qllm.engine.micro import LAUNCH_US, MATMUL_NS, Layer, Perm, Step
from qllm.engine.pauli_walk import ROTATIONS
from qllm.engine.plan import Plan, on_device
from qllm.engine.shift import data_shifts, first_order
from qllm.gates import gate

# FixedMatrix keeps two 2^n x 2^n matrices per layer (16 MiB each at 10 qubits, complex128);
# the cost model (core_cost_us) decides whether the core pays.
SHIFT_QUBITS = 10
_PAULI = {"X": ((0, 1), (1, 0)), "Y": ((0, -1j), (1j, 0)), "Z": ((1, 0), (0, -1))}
_EYE, _ZERO = torch.eye(2, dtype=torch.complex128), torch.zeros(2, 2, dtype=torch.complex128)


@dataclass
class Factors:
    """A layer's factor tables (CPU; copied to a device once): factor = K + cos(h) A + sin(h) B
    with h = scale * shared[source] (K: none in the weight matrix's 2x2s; bloch.py's Bloch
    rotations have one)."""

    source: torch.Tensor  # [D, m]: each factor slot's angle index into the shared vector
    scale: torch.Tensor  # [D, m]: the angle's multiplier (0: a fixed factor)
    A: torch.Tensor  # [D, m, d, d]
    B: torch.Tensor
    trainable: bool = True  # some factor reads an angle
    K: torch.Tensor | None = None
    _tables: dict = field(default_factory=dict)

    def tables(self, device, dtype) -> tuple[torch.Tensor, ...]:
        """(source, scale, A, B, K) on ``device``, the matrices in ``dtype``."""
        key = (device, dtype)
        if key not in self._tables:
            self._tables[key] = (self.source.to(device), self.scale.to(device, dtype.to_real()),
                                 _cast(self.A, device, dtype), _cast(self.B, device, dtype),
                                 None if self.K is None else _cast(self.K, device, dtype))
        return self._tables[key]


def _cast(table: torch.Tensor, device, dtype) -> torch.Tensor:
    """``table`` on ``device`` in ``dtype``. A real plan (its phases dropped) runs complex tables
    in a real dtype: their imaginary parts must be zero, and are dropped explicitly (torch would
    warn on every such plan, and say nothing where one was not zero)."""
    if table.is_complex() and not dtype.is_complex:
        if bool(table.imag.any()):
            raise ValueError("a complex factor table cast to a real dtype (an engine bug)")
        table = table.real
    return table.to(device, dtype)


@dataclass
class LayerStage:
    """A layer of ``FixedMatrix``: its factor tables and where its matrix goes."""

    layer: Layer
    factors: Factors
    qubits: torch.Tensor  # the layer's qubits: they pick its partial traces
    rows: torch.Tensor | None  # first layer only: the leading permutations' gather ...
    inverse_rows: torch.Tensor | None  # ... and its inverse (M = K[inverse_rows])
    cols: torch.Tensor | None  # rotated layers: the matrix's column order ...
    inverse_cols: torch.Tensor | None  # ... and its inverse


def _factors(steps: list[Step], m: int) -> list[list] | None:
    """Per layer position, its factors in time order: (source, half-scale, A, B); None when a
    gate is neither a Pauli rotation (``ROTATIONS``) nor parameter-free."""
    per_position: list[list] = [[] for _ in range(m)]
    for step in steps:
        for name, group, positions in step.parts:
            g = gate(name)
            if not g.n_params:
                fixed = g.matrix(torch.zeros(0, dtype=torch.float64)).to(torch.complex128)
                for pos in positions:
                    per_position[pos].append((0, 0.0, fixed, _ZERO))
                continue
            if name not in ROTATIONS or len(ROTATIONS[name][0][0]) != 1 or group.data:
                return None
            for j, pos in enumerate(positions):
                slots = group.slots[j * g.n_params:(j + 1) * g.n_params]
                scales = group.scale_values[j * g.n_params:(j + 1) * g.n_params]
                for letter, p, a in ROTATIONS[name]:
                    pauli = torch.tensor(_PAULI[letter], dtype=torch.complex128)
                    per_position[pos].append((slots[p][1], a * scales[p] / 2, _EYE, -1j * pauli))
    return per_position


def factor_tables(steps: list[Step], m: int) -> Factors | None:
    """The tables of ``steps`` on a layer of ``m`` qubits (None: see ``_factors``)."""
    per_position = _factors(steps, m)
    if per_position is None:
        return None
    D = max(1, *map(len, per_position))
    identity = (0, 0.0, _EYE, _ZERO)
    slots = [[seq[d] if d < len(seq) else identity for seq in per_position] for d in range(D)]
    return Factors(torch.tensor([[s[0] for s in row] for row in slots]),
                   torch.tensor([[s[1] for s in row] for row in slots], dtype=torch.float64),
                   torch.stack([torch.stack([s[2] for s in row]) for row in slots]),
                   torch.stack([torch.stack([s[3] for s in row]) for row in slots]),
                   any(s[1] for row in slots for s in row))


def _layer_stage(layer: Layer, n: int, rows, first: bool) -> LayerStage | None:
    factors = factor_tables(layer.steps, len(layer.qubits))
    if factors is None:
        return None
    cols = unrotation(layer, n, "cpu")
    return LayerStage(layer, factors, torch.tensor(layer.qubits), rows if first else None,
                      torch.argsort(rows) if first else None, cols,
                      None if cols is None else torch.argsort(cols))


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
            continue
        stage = _layer_stage(m, n, rows, not stages) if isinstance(m, Layer) else None
        if stage is None:
            return None
        stages.append(stage)
    return stages or None


def core_cost_us(stages: list, n: int, batch: int) -> float:
    """Estimated forward + backward time of ``FixedMatrix`` and the core's three B x 2^n x 2^n
    products, in the units of fused.py's cost model. Fitted on this 2-core CPU (n = 4..10,
    B = 64..16384; ``benchmarks/auto_choice.py``): a layer costs about 30 small ops and its
    Kronecker products; the first layer adds one 2^n-cubed product and each later one three,
    at half the model's rate per multiply-add; the three batch products cost about 0.4 B 4^n
    multiply-adds, a seventh of the autograd fused path's (real product states, no conjugated
    copies, and at these sizes memory-bound rather than compute-bound)."""
    layers = [s for s in stages if isinstance(s, LayerStage)]
    dim = 2**n
    launches = sum(8 + 2 * n for _ in layers) * LAUNCH_US
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


def layer_factors(tables: Factors, shared: torch.Tensor, dtype):
    """(cos h, sin h [.., D, m], the factors [.., D, m, d, d], each qubit's running products:
    the last is each qubit's 2x2, the first factor applied first)."""
    source, scale, A, B, K = tables.tables(shared.device, dtype)
    # a fixed slot's source is 0 with scale 0; a layer of fixed gates reads nothing (there may
    # be no angles at all)
    h = shared[..., source] * scale if tables.trainable \
        else scale.expand(*shared.shape[:-1], -1, -1)
    cos, sin = h.cos()[..., None, None], h.sin()[..., None, None]  # the backward reuses them
    factors = cos * A + sin * B if K is None else K + cos * A + sin * B
    running = [factors[..., 0, :, :, :]]
    for d in range(1, factors.shape[-4]):
        running.append(factors[..., d, :, :, :] @ running[-1])
    return cos, sin, factors, running


class FixedMatrix(torch.autograd.Function):
    """``M`` ``[2^n, 2^n]`` (``state @ M`` applies the stages) from the shared angle vector
    ``[S]``; from ``[H, S]`` (H circuits of one spec, each its own weights), ``[H, 2^n, 2^n]``."""

    @staticmethod
    def forward(ctx, shared, stages, n, dtype):
        device, M, saved = shared.device, None, []
        for stage in stages:
            if isinstance(stage, Perm):  # M_new = M[:, gather]
                M = M[..., on_device(stage.gather, device)]
                continue
            cos, sin, factors, running = layer_factors(stage.factors, shared, dtype)
            k = layer_kron(stage.layer, running[-1], n)
            # M before the layer's column order: its adjoint turns dL/dM into K^H dL/dK
            M = k[..., on_device(stage.inverse_rows, device), :] if M is None else M @ k
            saved.append((M, k, cos, sin, factors, *running))
            if stage.cols is not None:
                M = M[..., on_device(stage.cols, device)]
        # through save_for_backward (not ctx attributes), so torch.utils.checkpoint frees them
        ctx.sizes = [len(s) for s in saved]
        ctx.save_for_backward(*(t for layer in saved for t in layer))
        ctx.stages, ctx.n, ctx.shape = stages, n, shared.shape
        return M

    @staticmethod
    @first_order
    def backward(ctx, grad):
        flat, saved, i = ctx.saved_tensors, [], 0
        for size in ctx.sizes:
            saved.append(flat[i:i + size])
            i += size
        grad_shared = grad.real.new_zeros(ctx.shape)
        for stage in reversed(ctx.stages):
            if isinstance(stage, Perm):
                grad = grad[..., on_device(stage.inverse, grad.device)]
                continue
            m_raw, k, cos, sin, factors, *running = saved.pop()
            if stage.cols is not None:
                grad = grad[..., on_device(stage.inverse_cols, grad.device)]
            grad_m = grad
            if stage.rows is None:  # not the first layer: dL/dM_before = dL/dM K^H
                grad = grad @ _adjoint(k)
            if stage.factors.trainable:
                _add_layer_grad(grad_shared, stage, ctx.n, m_raw, grad_m, (cos, sin), factors,
                                running)
        return grad_shared, None, None, None


def _add_layer_grad(grad_shared, stage: LayerStage, n: int, m_raw, grad_m, trig, factors,
                    running):
    """Add one layer's dL/dshared, from dL/dM after it (see the module docstring)."""
    device = grad_m.device
    y = (_adjoint(m_raw) @ grad_m).flatten(-2)  # K^H dL/dK = (M_before K)^H dL/dM
    trace = y[..., on_device(_trace_index(n), device)].sum(-1)  # [.., n, 2, 2]
    u = running[-1]  # [.., m, 2, 2]: each layer qubit's 2x2
    # dL/du: transposed, since the Kronecker factors are u^T
    g = (u.transpose(-1, -2) @ trace[..., on_device(stage.qubits, device), :, :]).transpose(-1, -2)
    add_factor_grads(grad_shared, stage.factors, g, trig, factors, running)


def add_factor_grads(grad_shared, tables: Factors, g, trig, factors, running) -> None:
    """Add dL/dshared from g = dL/du of each qubit's product u (``layer_factors``' outputs)."""
    grads = []
    for d in range(factors.shape[-4] - 1, 0, -1):  # u = f_D .. f_1: peel the last factor off
        grads.append(g @ _adjoint(running[d - 1]))
        g = _adjoint(factors[..., d, :, :, :]) @ g
    grads.append(g)
    grad_f = torch.stack(grads[::-1], -4)  # [.., D, m, 2, 2]
    source, scale, A, B, _ = tables.tables(g.device, g.dtype)
    cos, sin = trig
    dfactor = cos * B - sin * A
    grad_h = (grad_f.conj() * dfactor).real.sum((-1, -2)) * scale
    grad_shared.index_add_(-1, source.flatten(), grad_h.flatten(-2))
