"""Compile a CircuitSpec into a plan of cheap batched stages (micro-ops).

Why a plan: a sublayer's weights are shared by every token and most gates act on one qubit, so
  1. prefix: single-qubit gates that act before any multi-qubit gate on their qubit build a
     product state (one 2-vector per qubit, Kronecker-multiplied), with no 2^n x 2^n matrix;
  2. the rest compiles into micro-ops, each applied to the whole batch in a few kernels:
     - Layer: single-qubit gates on many qubits (they commute across qubits, so a later gate joins
       the most recent layer unless a micro-op in between touches its qubit); applied as a few
       Kronecker blocks of up to 2^4 x 2^4 by matrix products (B * 2^n * 16 multiply-adds).
       When its blocks span all qubits and a Perm (or the sign table) follows, the layer applies
       every block on the last axis and rotates the axes between blocks, leaving the qubits in
       rotated order: the Perm's gather (or the sign table) absorbs that order for free;
     - Perm: parameter-free permutations (X, CNOT, SWAP) compose into one index gather;
     - Diag: diagonal gates (RZZ, CZ, CRZ, IQP phases...) add into one phase vector;
     - Mat: any other multi-qubit gate, applied as a 4x4 matrix;
  3. runs of micro-ops without data (fixed segments) may instead be fused into one 2^n x 2^n
     matrix per call and applied as one matrix product (see fused.py, which decides);
  4. when every observable is diagonal (Z/I only), diagonal gates followed only by permutations
     and phases are dropped (``drop_unseen_diagonals``), and trailing Perm and Diag micro-ops
     are not run: phases do not change probabilities and a permutation folds into the sign
     table;
  5. a plan that is just a prefix, one fixed segment and diagonal observables (the quantum-FFN
     shape) runs, under "auto", through a product-state core: product.py's dense one (the
     segment as one 2^n x 2^n matrix, three autograd nodes with hand-written backwards,
     fixed_matrix.py and shift.py) at small n, kron.py's Kronecker one (the segment block by
     block on an amplitude-major state, one autograd node) where the dense matrix costs more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch

from qllm.engine.angles import Sources
from qllm.engine.micro import Diag, Layer, Mat, Micro, Perm, Step  # noqa: F401 (re-exported)
from qllm.gates import gate
from qllm.spec import CircuitSpec, Op


@dataclass
class Segment:
    data: bool  # some angle reads inputs: per-token matrices
    micros: list[Micro]

    @property
    def fixed(self) -> bool:
        return not self.data


@dataclass
class Plan:
    n_qubits: int
    real: bool
    sources: Sources
    prefix: Layer | None  # over all qubits; applied to |0...0>
    segments: list[Segment]
    sign_gather: torch.Tensor | None  # folded trailing permutation (Z-only observables)
    observables: tuple[str, ...]
    rest: tuple[Op, ...] = ()  # the ops after the prefix, in order (the Pauli core walks them)
    cache: dict = field(default_factory=dict)  # derived per-plan data (e.g. FixedMatrix stages)


_ON_DEVICE: dict = {}


def on_device(t: torch.Tensor, device, dtype=None) -> torch.Tensor:
    """``t.to(device, dtype)``, cached: plan tables are copied to a GPU once, not every call
    (each host-to-device copy of pageable memory stalls the launch queue)."""
    device = torch.device(device)
    if t.device == device and (dtype is None or t.dtype == dtype):
        return t
    key = (id(t), device, dtype)
    hit = _ON_DEVICE.get(key)
    if hit is None or hit[0] is not t:  # the ids of freed tensors can be reused
        if len(_ON_DEVICE) > 4096:
            _ON_DEVICE.clear()
        hit = (t, t.to(device, dtype) if dtype is not None else t.to(device))
        _ON_DEVICE[key] = hit
    return hit[1]


BLOCK_QUBITS = 4  # Kronecker blocks of up to 16 x 16: big enough for efficient matrix products


def blocks(qubits: list[int], size: int = BLOCK_QUBITS) -> list[tuple[int, int]]:
    """Contiguous (first qubit, n qubits) ranges of at most ``size`` qubits covering ``qubits``."""
    out, i = [], 0
    while i < len(qubits):
        j = i
        while j + 1 < len(qubits) and qubits[j + 1] - qubits[i] < size:
            j += 1
        out.append((qubits[i], qubits[j] - qubits[i] + 1))
        i = j + 1
    return out


def rotation_index(n: int, h: int) -> torch.Tensor:
    """Where basis state k sits after a rotated layer whose first block has ``h`` qubits: the
    first h qubits (hi) move behind the other n - h (lo): k = hi * 2^(n-h) + lo -> lo * 2^h + hi."""
    k = torch.arange(2**n)
    lo_bits = n - h
    return (k & (2**lo_bits - 1)) * 2**h + (k >> lo_bits)


def _bits(n: int, wires: tuple[int, ...]) -> torch.Tensor:
    """Index of each basis state's sub-state on ``wires`` (qubit 0 most significant): [2^n]."""
    k = torch.arange(2**n)
    sub = torch.zeros_like(k)
    for q in wires:
        sub = sub * 2 + ((k >> (n - 1 - q)) & 1)
    return sub


def _perm_gather(n: int, op: Op) -> torch.Tensor:
    inv = torch.argsort(torch.tensor(gate(op.gate).permutation))
    src_sub = inv[_bits(n, op.wires)]
    src = torch.arange(2**n)
    d = len(op.wires)
    for i, q in enumerate(op.wires):
        bit = (src_sub >> (d - 1 - i)) & 1
        shift = n - 1 - q
        src = (src & ~(1 << shift)) | (bit << shift)
    return src


def _diag_table(n: int, op: Op) -> torch.Tensor:
    return torch.tensor(gate(op.gate).diag_phases, dtype=torch.float64)[_bits(n, op.wires)]


def _kind(op: Op) -> str:
    g = gate(op.gate)
    if g.permutation is not None and not op.params:
        return "perm"
    if len(op.wires) == 1:
        return "single"
    return "diag" if g.diag_phases is not None else "mat"


def _finish_layer(layer: Layer, sources: Sources) -> None:
    """Split the layer's per-qubit gate sequences into steps and group their angles."""
    pos = {q: i for i, q in enumerate(layer.qubits)}
    per_qubit: dict[int, list[Op]] = {q: [] for q in layer.qubits}
    for op in layer.ops:
        per_qubit[op.wires[0]].append(op)
    depth = max((len(v) for v in per_qubit.values()), default=0)
    for j in range(depth):
        by_gate: dict[str, list[Op]] = {}
        for q in layer.qubits:
            if j < len(per_qubit[q]):
                by_gate.setdefault(per_qubit[q][j].gate, []).append(per_qubit[q][j])
        parts, placed = [], []
        for name, ops in by_gate.items():
            group = sources.group(ops) if gate(name).n_params else None
            parts.append((name, group, [pos[op.wires[0]] for op in ops]))
            placed += parts[-1][2]
        missing = [i for i in range(len(layer.qubits)) if i not in placed]
        order = torch.argsort(torch.tensor(placed + missing))
        identity = bool((order == torch.arange(len(order))).all())
        layer.steps.append(Step(parts, len(missing), None if identity else order))
    layer.data = any(g is not None and g.data for s in layer.steps for _, g, _ in s.parts)


def _place_single(micros: list[Micro], op: Op, n: int) -> None:
    q = op.wires[0]
    last = micros[-1] if micros else None
    g = gate(op.gate)
    if g.diag_phases is not None and isinstance(last, Diag):
        _add_diag(last, op, n)
        return
    for m in reversed(micros):  # join the latest layer that nothing in between blocks
        if isinstance(m, Layer):
            m.ops.append(op)
            return
        if q in m.wires:
            break
    micros.append(Layer(list(range(n)), [op]))


def _add_diag(d: Diag, op: Op, n: int) -> None:
    table = _diag_table(n, op)
    d.ops.append(op)
    if op.params:
        d.phases = table[None] if d.phases is None else torch.cat([d.phases, table[None]])
    else:
        d.const_phase = d.const_phase + table


def compile_micros(ops: list[Op], n: int, sources: Sources) -> list[Micro]:
    micros: list[Micro] = []
    for op in ops:
        kind = _kind(op)
        last = micros[-1] if micros else None
        if kind == "single":
            _place_single(micros, op, n)
        elif kind == "perm":
            g = _perm_gather(n, op)
            if isinstance(last, Perm):
                last.gather = last.gather[g]
                last.ops.append(op)
            else:
                micros.append(Perm(g, g, [op]))
        elif kind == "diag":
            if not isinstance(last, Diag):
                last = Diag(torch.zeros(2**n, dtype=torch.float64), None, None, [])
                micros.append(last)
            _add_diag(last, op, n)
        else:
            micros.append(Mat(op, None))
    for m in micros:
        if isinstance(m, Layer):
            m.qubits = sorted(m.wires)
            m.blocks = blocks(m.qubits)
            _finish_layer(m, sources)
        elif isinstance(m, Perm):
            m.inverse = torch.argsort(m.gather)
        elif isinstance(m, Diag):
            param_ops = [op for op in m.ops if op.params]
            m.group = sources.group(param_ops) if param_ops else None
            m.data = m.group is not None and m.group.data
        else:
            m.group = sources.group([m.op]) if m.op.params else None
            m.data = m.group is not None and m.group.data
    return micros


def _fold_trailing(micros: list[Micro], observables: tuple[str, ...]):
    """Drop trailing Perm/Diag micro-ops when every observable is diagonal. Returns the micro-ops,
    whether the sign table can absorb a permutation, and the dropped permutations' composed
    gather (or None)."""
    if any(set(o) - {"I", "Z"} for o in observables):
        return micros, False, None
    gathers = []
    while micros and isinstance(micros[-1], (Perm, Diag)):
        m = micros.pop()
        if isinstance(m, Perm):
            gathers.insert(0, m.gather)
    total = gathers[0] if gathers else None
    for g in gathers[1:]:
        total = total[g]
    return micros, True, total


def _rotate_layers(micros: list[Micro], n: int, sign_foldable: bool, total):
    """Mark layers whose blocks span all qubits and whose next micro-op (a Perm, or the sign
    table at the end) can absorb the rotated qubit order; returns the final sign gather."""
    for i, m in enumerate(micros):
        if not isinstance(m, Layer) or len(m.blocks) < 2:
            continue
        if m.blocks[0][0] != 0 or sum(k for _, k in m.blocks) != n:
            continue
        index = rotation_index(n, m.blocks[0][1])
        nxt = micros[i + 1] if i + 1 < len(micros) else None
        if isinstance(nxt, Perm):
            nxt.gather = index[nxt.gather]
            nxt.inverse = torch.argsort(nxt.gather)
            m.rotated = True
        elif nxt is None and sign_foldable:
            total = index if total is None else index[total]
            m.rotated = True
    return None if total is None else torch.argsort(total)


def _monomial(op: Op) -> bool:
    g = gate(op.gate)
    return g.diag_phases is not None or (g.permutation is not None and not op.params)


def drop_unseen_diagonals(ops: tuple[Op, ...], observables: tuple[str, ...]) -> list[Op]:
    """The ops without the diagonal gates that cannot change Z/I expectation values: those
    followed on their wires only by monomial gates (permutations and phases). A diagonal on
    wires S moves past a later gate on other wires (they commute) or a monomial one, which
    turns it into a diagonal on S and that gate's wires; at the end phases leave probabilities
    unchanged. Other observables keep every op."""
    if any(set(o) - {"I", "Z"} for o in observables):
        return list(ops)
    kept = []
    for i, op in enumerate(ops):
        support = set(op.wires) if gate(op.gate).diag_phases is not None else None
        for later in ops[i + 1:] if support is not None else ():
            if support.isdisjoint(later.wires):
                continue
            if not _monomial(later):
                support = None
                break
            support |= set(later.wires)
        if support is None:
            kept.append(op)
    return kept


@lru_cache(maxsize=256)
def make_plan(spec: CircuitSpec) -> Plan:
    n = spec.n_qubits
    sources = Sources(spec.n_weights)
    prefix_ops: list[Op] = []
    rest: list[Op] = []
    blocked: set[int] = set()
    ops = drop_unseen_diagonals(spec.ops, spec.observables)
    for op in ops:
        if len(op.wires) == 1 and op.wires[0] not in blocked:
            prefix_ops.append(op)
        else:
            blocked |= set(op.wires)
            rest.append(op)
    prefix = None
    if prefix_ops:
        prefix = Layer(list(range(n)), prefix_ops)
        _finish_layer(prefix, sources)
    micros, foldable, total = _fold_trailing(compile_micros(rest, n, sources), spec.observables)
    sign_gather = _rotate_layers(micros, n, foldable, total)
    segments: list[Segment] = []
    for m in micros:
        if segments and segments[-1].data == m.data:
            segments[-1].micros.append(m)
        else:
            segments.append(Segment(m.data, [m]))
    real = spec.is_real or all(gate(op.gate).real for op in ops)  # dropped phases: maybe real
    return Plan(n, real, sources, prefix, segments, sign_gather, spec.observables, tuple(rest))


def decided(plan: Plan, key: tuple, decide):
    """A cost-model decision or estimate, cached on the plan per key (batch size...: every call
    asks, the memory guard too); at most 256 kept, since routed batches (experts) vary from
    step to step."""
    memo = plan.cache.setdefault("decisions", {})
    if key not in memo:
        if len(memo) >= 256:
            memo.clear()
        memo[key] = decide()
    return memo[key]
