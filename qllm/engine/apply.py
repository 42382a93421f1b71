"""Apply micro-ops to a batch of statevectors ``[B, 2^n]`` (gate-by-gate strategy).

Matrices are shared ``[d, d]`` or per token ``[B, d, d]``. The state is real when the whole
circuit is real, complex otherwise.
"""

from __future__ import annotations

import torch

from qllm.engine.plan import Micro
from qllm.gates import gate
from qllm.spec import CircuitSpec


def micro_matrix(spec: CircuitSpec, m: Micro, inputs, weights, dtype) -> torch.Tensor:
    """The product of a "mat" micro-op's gates: ``[d, d]`` or ``[B, d, d]``."""
    mat = None
    for op in m.ops:
        g = gate(op.gate)
        if g.n_params:
            angles = spec.op_angles(op, inputs, weights)
        else:
            angles = weights.new_zeros(0)
        u = g.matrix(angles).to(dtype)
        mat = u if mat is None else u @ mat
    return mat


def micro_phases(spec: CircuitSpec, m: Micro, inputs, weights) -> torch.Tensor:
    """Total phase per basis state of a "diag" micro-op: ``[2^n]`` or ``[B, 2^n]``."""
    coeffs = []
    batched = False
    for op in m.ops:
        if op.params:
            a = spec.op_angles(op, inputs, weights)[..., 0]
            batched |= op.uses_input
        else:
            a = weights.new_ones(())
        coeffs.append(a)
    if batched:
        coeffs = [c.expand(inputs.shape[0]) for c in coeffs]
    angles = torch.stack(coeffs, -1)  # [m] or [B, m]
    return angles @ m.phases.to(dtype=angles.dtype, device=angles.device)


def apply_matrix(state: torch.Tensor, mat: torch.Tensor, wires: tuple[int, ...], n: int):
    B = state.shape[0]
    k = len(wires)
    if k == 1:
        q = wires[0]
        psi = state.reshape(B, 2**q, 2, 2 ** (n - q - 1))
        mat = mat[:, None] if mat.dim() == 3 else mat
        return (mat @ psi).reshape(B, -1)
    psi = state.reshape([B] + [2] * n)
    src = [1 + q for q in wires]
    dst = list(range(n + 1 - k, n + 1))
    psi = psi.movedim(src, dst)
    shape = psi.shape
    psi = psi.reshape(B, -1, 2**k)
    mt = mat.transpose(-1, -2)
    psi = psi @ mt  # [B, rest, d] @ [d, d] or [B, d, d]
    return psi.reshape(shape).movedim(dst, src).reshape(B, -1)


def apply_micro(spec: CircuitSpec, m: Micro, state, inputs, weights) -> torch.Tensor:
    n = spec.n_qubits
    if m.kind == "perm":
        return state[:, m.gather.to(state.device)]
    if m.kind == "diag":
        phase = micro_phases(spec, m, inputs, weights).to(state.real.dtype)
        if state.is_complex():
            return state * torch.polar(torch.ones_like(phase), phase)
        return state * torch.cos(phase)  # real circuits: diagonal phases are 0 or pi
    return apply_matrix(state, micro_matrix(spec, m, inputs, weights, state.dtype), m.wires, n)
