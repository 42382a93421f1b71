"""Vectorised angle lookup: all angles of a group of ops in one indexing op.

Why: building angles op by op (``spec.op_angles``) costs a few kernel launches per op, forward and
backward, and at small n launches dominate the run time. At plan time every angle gets an index
into a per-call source vector: ``shared = [weights, constants]`` for angles that are the same for
every token, or ``mixed = [shared, input features and feature products]`` with one row per token.
"""

from __future__ import annotations

import torch

from qllm.spec import Op, Param


class Sources:
    """The distinct angle sources of a spec, collected while its plan is compiled."""

    def __init__(self, n_weights: int):
        self.n_weights = n_weights
        self.consts: list[float] = []
        self.inputs: list[tuple[int, ...]] = []  # feature tuples; a tuple multiplies its features
        self.groups: list[AngleGroup] = []
        self._consts: dict = {}

    def const_tensor(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        if key not in self._consts:  # built once per device: no host-to-device copy per call
            self._consts[key] = torch.tensor(self.consts, dtype=like.dtype, device=like.device)
        return self._consts[key]

    def shared(self, weights: torch.Tensor) -> torch.Tensor:
        """The shared source vector ``[..., S]``: the weights, then the constants."""
        if not self.consts:
            return weights
        consts = self.const_tensor(weights).expand(*weights.shape[:-1], -1)
        return torch.cat([weights[..., :self.n_weights], consts], -1)

    @property
    def n_shared(self) -> int:
        return self.n_weights + len(self.consts)

    def slot(self, p: Param) -> tuple[bool, int]:
        """(reads data, index into the shared vector or the input columns)."""
        if p.kind == "weight":
            return False, p.indices[0]
        if p.kind == "const":
            if p.value not in self.consts:
                self.consts.append(p.value)
            return False, self.n_weights + self.consts.index(p.value)
        if p.indices not in self.inputs:
            self.inputs.append(p.indices)
        return True, self.inputs.index(p.indices)

    def group(self, ops: list[Op]) -> AngleGroup:
        g = AngleGroup(self, ops)
        self.groups.append(g)
        return g


class AngleGroup:
    """The angles of ``m`` ops of ``P`` parameters each: ``[m, P]``, or ``[B, m, P]`` when data."""

    def __init__(self, sources: Sources, ops: list[Op]):
        self.sources = sources
        self.shape = (len(ops), len(ops[0].params))
        self.slots = [sources.slot(p) for op in ops for p in op.params]
        self.scale_values = [p.scale for op in ops for p in op.params]
        self.data = any(d for d, _ in self.slots)
        self.data_only = all(d for d, _ in self.slots)  # read straight from the data columns
        self.unit_scale = all(s == 1.0 for s in self.scale_values)
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def tensors(self, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(index, scale) on ``device``; data indices point past the shared block."""
        key = (device, dtype)
        if key not in self._cache:
            off = 0 if self.data_only else self.sources.n_shared
            idx = [i + off if d else i for d, i in self.slots]
            self._cache[key] = (torch.tensor(idx, dtype=torch.long, device=device),
                                torch.tensor(self.scale_values, dtype=dtype, device=device))
        return self._cache[key]


class AngleContext:
    """Per-call source vectors, built once (lazily) and shared by every group."""

    def __init__(self, sources: Sources, inputs: torch.Tensor, weights: torch.Tensor):
        self.sources = sources
        self.inputs = inputs
        self.B = inputs.shape[0]
        self.shared = sources.shared(weights)  # [S]
        self._mixed: torch.Tensor | None = None

    def data_columns(self) -> torch.Tensor:
        """``[B, D]``: column i is ``sources.inputs[i]`` (a feature, or a product of features)."""
        if self.sources.inputs == [(i,) for i in range(self.inputs.shape[1])]:
            return self.inputs
        cols = []
        for t in self.sources.inputs:
            c = self.inputs[:, t[0]]
            for i in t[1:]:
                c = c * self.inputs[:, i]
            cols.append(c)
        return torch.stack(cols, 1)

    def mixed(self) -> torch.Tensor:
        if self._mixed is None:
            self._mixed = torch.cat([self.shared.expand(self.B, -1), self.data_columns()], 1)
        return self._mixed  # [B, S + D]

    def angles(self, g: AngleGroup) -> torch.Tensor:
        idx, scale = g.tensors(self.shared.device, self.shared.dtype)
        if g.data:
            a = (self.data_columns() if g.data_only else self.mixed())[:, idx]
            a = a if g.unit_scale else a * scale
            return a.view(self.B, *g.shape)  # [B, m, P]
        a = self.shared[idx]
        a = a if g.unit_scale else a * scale
        return a.view(g.shape)  # [m, P]
