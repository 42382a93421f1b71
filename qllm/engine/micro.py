"""The micro-ops a plan compiles to (see plan.py), each with what the planners need to know about
it in one place: the batch states it saves for the backward (memory estimate), its index and
phase tables, and its estimated forward + backward time (the cost model that picks a path).
How each one is applied to a batch lives with the other kernels, in apply.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qllm.engine.angles import AngleGroup
from qllm.spec import Op

# Cost model, in microseconds: a launched op (forward + backward) costs LAUNCH_US; a micro-op
# touches its rows at ELEM_NS per amplitude; a matrix product runs at MATMUL_NS per multiply-add.
# Measured on a 2-core CPU (benchmarks/engine_speed.py).
LAUNCH_US = 25.0
ELEM_NS = 1.0
MATMUL_NS = 0.02


@dataclass
class Step:
    """One single-qubit gate per qubit (at most); ops of the same gate share one AngleGroup."""

    parts: list[tuple[str, AngleGroup | None, list[int]]]  # (gate, angles, positions in layer)
    n_missing: int  # layer qubits without a gate in this step (identity)
    order: torch.Tensor | None  # reorders cat(part matrices, identities) into layer positions


@dataclass
class Layer:
    qubits: list[int]
    ops: list[Op] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    data: bool = False
    kind: str = "layer"
    blocks: list[tuple[int, int]] = field(default_factory=list)  # (first qubit, n qubits)
    rotated: bool = False  # output leaves the first block's qubits last (see module docstring)

    @property
    def wires(self) -> set[int]:
        return {op.wires[0] for op in self.ops}

    def saved_states(self) -> int:
        return len(self.blocks)  # one per Kronecker block

    def table_bytes(self, dim: int) -> int:
        return 0

    def cost_us(self, rows: int, n: int) -> float:
        amps = rows * 2**n
        launches = 4 * len(self.steps) + 3 * sum(k for _, k in self.blocks)
        return launches * LAUNCH_US + sum(amps * 2**k for _, k in self.blocks) * MATMUL_NS * 3 / 1e3 \
            + len(self.blocks) * amps * ELEM_NS / 1e3


class _OpsWires:
    """The wires of a micro-op that merges several ops (``self.ops``)."""

    @property
    def wires(self) -> set[int]:
        return {q for op in self.ops for q in op.wires}


@dataclass
class Perm(_OpsWires):
    gather: torch.Tensor  # state' = state[:, gather]
    inverse: torch.Tensor
    ops: list[Op]
    data: bool = False
    kind: str = "perm"

    def saved_states(self) -> int:
        return 0  # a permutation keeps only its index

    def table_bytes(self, dim: int) -> int:
        return 16 * dim  # gather + inverse (int64)

    def cost_us(self, rows: int, n: int) -> float:
        return 2 * LAUNCH_US + 2 * rows * 2**n * ELEM_NS / 1e3


@dataclass
class Diag(_OpsWires):
    const_phase: torch.Tensor  # [2^n] float64: summed phases of parameter-free gates
    phases: torch.Tensor | None  # [m, 2^n] float64, one row per parameterised gate
    group: AngleGroup | None
    ops: list[Op]
    data: bool = False
    kind: str = "diag"

    def saved_states(self) -> int:
        return 1

    def table_bytes(self, dim: int) -> int:
        return 8 * dim * (1 + (0 if self.phases is None else self.phases.shape[0]))

    def cost_us(self, rows: int, n: int) -> float:
        return 6 * LAUNCH_US + 3 * rows * 2**n * ELEM_NS / 1e3


@dataclass
class Mat:
    op: Op
    group: AngleGroup | None
    data: bool = False
    kind: str = "mat"

    @property
    def ops(self) -> list[Op]:
        return [self.op]

    @property
    def wires(self) -> set[int]:
        return set(self.op.wires)

    def saved_states(self) -> int:
        return 2

    def table_bytes(self, dim: int) -> int:
        return 0

    def cost_us(self, rows: int, n: int) -> float:
        return 8 * LAUNCH_US + 6 * rows * 2**n * ELEM_NS / 1e3


Micro = Layer | Perm | Diag | Mat
