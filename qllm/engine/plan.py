"""Compile a CircuitSpec into a plan of cheap stages for the batched engine.

Why a plan: a sublayer's weights are shared by every token, so the circuit splits into
  1. a product-state prefix (leading single-qubit gates act on |0>: one 2-vector per qubit,
     Kronecker-multiplied into the batch state without any 2^n x 2^n matrix),
  2. fixed segments (weights and constants only): the same for every token, so they can be fused
     into one 2^n x 2^n matrix and applied to the whole batch as a single matrix product,
  3. data segments (angles read inputs): applied gate by gate to the batch.
Inside a segment, consecutive micro-ops merge: single-qubit gates on one qubit multiply into one
2x2, permutation gates (X, CNOT, SWAP) compose into one index gather, diagonal gates (RZ, CZ, RZZ,
IQP phases...) add into one phase vector. This cuts kernel launches, which dominate at small n.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch

from qllm.gates import gate
from qllm.spec import CircuitSpec, Op


@dataclass
class Micro:
    kind: str  # "mat" | "perm" | "diag"
    ops: list[Op] = field(default_factory=list)
    wires: tuple[int, ...] = ()
    gather: torch.Tensor | None = None  # perm: state' = state[:, gather]
    phases: torch.Tensor | None = None  # diag: [len(ops), 2^n] phase per basis state


@dataclass
class Segment:
    fixed: bool  # no op reads inputs: identical for every token
    micros: list[Micro]

    @property
    def n_ops(self) -> int:
        return sum(len(m.ops) for m in self.micros)


@dataclass
class Plan:
    n_qubits: int
    real: bool
    prefix: list[list[Op]]  # per qubit, the single-qubit ops that build the product state
    segments: list[Segment]


def _bits(n: int, wires: tuple[int, ...]) -> torch.Tensor:
    """Index of each basis state's sub-state on ``wires`` (qubit 0 most significant): [2^n]."""
    k = torch.arange(2**n)
    sub = torch.zeros_like(k)
    for q in wires:
        sub = sub * 2 + ((k >> (n - 1 - q)) & 1)
    return sub


def _perm_gather(n: int, op: Op) -> torch.Tensor:
    perm = torch.tensor(gate(op.gate).permutation)
    inv = torch.argsort(perm)
    k = torch.arange(2**n)
    sub = _bits(n, op.wires)
    src_sub = inv[sub]
    src = k.clone()
    d = len(op.wires)
    for i, q in enumerate(op.wires):
        bit = (src_sub >> (d - 1 - i)) & 1
        shift = n - 1 - q
        src = (src & ~(1 << shift)) | (bit << shift)
    return src


def _diag_phases(n: int, op: Op) -> torch.Tensor:
    table = torch.tensor(gate(op.gate).diag_phases, dtype=torch.float64)
    return table[_bits(n, op.wires)]


def _kind(op: Op) -> str:
    g = gate(op.gate)
    if g.permutation is not None and not op.params:
        return "perm"
    if g.diag_phases is not None:
        return "diag"
    return "mat"


def compile_micros(ops: list[Op], n: int) -> list[Micro]:
    micros: list[Micro] = []
    for op in ops:
        kind = _kind(op)
        last = micros[-1] if micros else None
        if kind == "perm":
            g = _perm_gather(n, op)
            if last is not None and last.kind == "perm":
                last.gather = last.gather[g]
                last.ops.append(op)
            else:
                micros.append(Micro("perm", [op], gather=g))
        elif kind == "diag":
            ph = _diag_phases(n, op)[None]
            if last is not None and last.kind == "diag":
                last.phases = torch.cat([last.phases, ph])
                last.ops.append(op)
            else:
                micros.append(Micro("diag", [op], phases=ph))
        elif (last is not None and last.kind == "mat" and len(op.wires) == 1
              and last.wires == op.wires):
            last.ops.append(op)
        else:
            micros.append(Micro("mat", [op], wires=op.wires))
    return micros


@lru_cache(maxsize=256)
def make_plan(spec: CircuitSpec) -> Plan:
    n = spec.n_qubits
    ops = list(spec.ops)
    prefix: list[list[Op]] = [[] for _ in range(n)]
    i = 0
    while i < len(ops) and len(ops[i].wires) == 1:
        prefix[ops[i].wires[0]].append(ops[i])
        i += 1
    segments: list[Segment] = []
    run: list[Op] = []
    for op in ops[i:]:
        fixed = not op.uses_input
        if run and (not run[-1].uses_input) != fixed:
            segments.append(Segment(not run[-1].uses_input, compile_micros(run, n)))
            run = []
        run.append(op)
    if run:
        segments.append(Segment(not run[-1].uses_input, compile_micros(run, n)))
    return Plan(n, spec.is_real, prefix, segments)
