"""Pauli propagation: observables walked back through fixed gates as sums of Pauli strings.

In the Heisenberg picture <O> = <psi| W^dagger O W |psi>. Walking the gates of W from the last:
a Clifford gate (CNOT, CZ, SWAP, H, S, X...) maps a Pauli string to one string with a sign (its
table is computed from the gate's matrix); a Pauli rotation exp(-i a theta P / 2) leaves a
commuting string alone and splits an anticommuting one Q into cos(a theta) Q + sin(a theta) iPQ.
A path is one such sequence of choices: its string, a real coefficient, and the cos/sin factors
it picked up (indices into ``[1, cos(angles), sin(angles)]`` of the rotation instances). Paths
are enumerated once per plan; past ``MAX_PATHS`` the walk gives up (deep circuits: the number
grows to 4^n) and the other cores run.
"""

from __future__ import annotations

import math
from functools import cache
from itertools import product

import numpy as np
import torch

from qllm.gates import gate
from qllm.spec import Op

MAX_PATHS = 1 << 14
_LETTERS = "IXYZ"
_SINGLE = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]),
           np.diag([1.0, -1.0])]

# Parametric gates as Pauli rotations exp(-i a theta_p P / 2), in time order, up to a global
# phase: (letters on the gate's wires, parameter index p, multiplier a). tests/test_pauli_core.py
# checks each against the gate's matrix.
ROTATIONS = {
    "RX": [("X", 0, 1.0)], "RY": [("Y", 0, 1.0)], "RZ": [("Z", 0, 1.0)],
    "PhaseShift": [("Z", 0, 1.0)],
    "Rot": [("Z", 0, 1.0), ("Y", 1, 1.0), ("Z", 2, 1.0)],
    "U3": [("Z", 2, 1.0), ("Y", 0, 1.0), ("Z", 1, 1.0)],
    "RXX": [("XX", 0, 1.0)], "RYY": [("YY", 0, 1.0)], "RZZ": [("ZZ", 0, 1.0)],
    "CRX": [("IX", 0, 0.5), ("ZX", 0, -0.5)], "CRY": [("IY", 0, 0.5), ("ZY", 0, -0.5)],
    "CRZ": [("IZ", 0, 0.5), ("ZZ", 0, -0.5)],
    "RBS": [("XY", 0, 1.0), ("YX", 0, -1.0)],
}
FIXED_ROTATIONS = {"T": ("Z", math.pi / 4)}  # parameter-free but not Clifford


def _multiply(a: int, b: int) -> tuple[int, int]:
    """sigma_a sigma_b = i^k sigma_c for letters 0..3 (I, X, Y, Z): returns (k, c)."""
    if a == 0 or b == 0 or a == b:
        return 0, a ^ b  # the other letter, or I for a == b
    return (1 if (b - a) % 3 == 1 else 3), 6 - a - b


@cache
def clifford_table(name: str) -> dict | None:
    """``U^dagger P U = sign * P'`` for every Pauli string P on the gate's wires: {P: (sign, P')};
    None when the fixed gate is not Clifford."""
    g = gate(name)
    u = g.matrix(torch.zeros(0, dtype=torch.float64)).numpy().astype(complex)
    k = g.n_qubits
    strings = list(product(range(4), repeat=k))
    mats = {s: _kron([_SINGLE[c] for c in s]) for s in strings}
    table = {}
    for s in strings:
        m = u.conj().T @ mats[s] @ u
        hits = [(np.trace(mats[t] @ m).real / 2**k, t) for t in strings]
        sign, t = max(hits, key=lambda h: abs(h[0]))
        if not np.allclose(m, sign * mats[t], atol=1e-9):
            return None
        table[s] = (round(sign), t)
    return table


def _kron(mats: list) -> np.ndarray:
    out = np.eye(1)
    for m in mats:
        out = np.kron(out, m)
    return out


@cache
def _rotation_table(letters: str) -> dict:
    """For a rotation about ``letters``: each local string (the path's letters on the gate's
    wires) that anticommutes with it -> (sign, the local letters of i P Q)."""
    table = {}
    for local in product(range(4), repeat=len(letters)):
        ks, anti, new = 0, 0, []
        for c, q in zip(letters, local):
            p = _LETTERS.index(c)
            anti ^= bool(p and q and p != q)
            phase, letter = _multiply(p, q)
            ks, new = ks + phase, new + [letter]
        if anti:
            table[local] = (1 if (1 + ks) % 4 == 0 else -1, tuple(new))  # i * i^ks, ks odd
    return table


def _rotate(paths: list, wires: tuple, letters: str, cos: int, sin: int,
            angle: float | None = None) -> list:
    """Paths ``(string, coef, factors, observable)`` through one rotation: a commuting string
    passes; an anticommuting one Q splits into Q (factor ``cos``) and i P Q (factor ``sin``).
    With a fixed ``angle`` the cos and sin are numbers folded into the coefficient."""
    table, out = _rotation_table(letters), []
    for path in paths:
        s, coef, factors, obs = path
        hit = table.get(tuple(s[q] for q in wires))
        if hit is None:
            out.append(path)
            continue
        sign, local = hit
        new = list(s)
        for q, c in zip(wires, local):
            new[q] = c
        if angle is None:
            out += [(s, coef, factors + (cos,), obs),
                    (tuple(new), sign * coef, factors + (sin,), obs)]
        else:
            out += [(s, coef * math.cos(angle), factors, obs),
                    (tuple(new), sign * coef * math.sin(angle), factors, obs)]
    return out


def walk(ops: list[Op], observables: tuple[str, ...], sources) -> tuple | None:
    """Every path of every observable back through ``ops``; None past MAX_PATHS or at a gate
    that is neither a listed rotation nor Clifford."""
    insts = []  # (shared slot, multiplier)
    for op in ops:
        for _, p, a in ROTATIONS.get(op.gate, ()):
            insts.append((sources.slot(op.params[p])[1], a * op.params[p].scale))
    paths = [(tuple(_LETTERS.index(c) for c in o), 1.0, (), j) for j, o in enumerate(observables)]
    R, r = len(insts), len(insts)
    for op in reversed(ops):
        if op.gate in ROTATIONS:
            for letters, _, _ in reversed(ROTATIONS[op.gate]):
                r -= 1  # factors index [1, cos(angles), sin(angles)]
                paths = _rotate(paths, op.wires, letters, 1 + r, 1 + R + r)
        elif op.gate in FIXED_ROTATIONS:
            letters, angle = FIXED_ROTATIONS[op.gate]
            paths = _rotate(paths, op.wires, letters, 0, 0, angle)
        else:
            table = clifford_table(op.gate)
            if table is None:
                return None
            paths = [_conjugate(p, op.wires, table) for p in paths]
        if len(paths) > MAX_PATHS:
            return None
    return paths, insts


def _conjugate(path: tuple, wires: tuple, table: dict) -> tuple:
    s, coef, factors, obs = path
    sign, image = table[tuple(s[q] for q in wires)]
    new = list(s)
    for q, c in zip(wires, image):
        new[q] = c
    return tuple(new), sign * coef, factors, obs


def path_factors(shared: torch.Tensor, slot: torch.Tensor, mult: torch.Tensor | None,
                 factors: torch.Tensor, n_paths: int, depth: int) -> tuple[torch.Tensor, ...]:
    """Each path's factors ``[H, P, D]`` from the shared angles ``[H, S]`` (a path's
    coefficient is their product times its constant), and the instances' cos and sin
    ``[H, R]``. ``slot``, ``mult``: ``walk``'s instances (angle = shared[slot] * mult; None: 1);
    ``factors`` ``[P * D]``: indices into [1, cos(angles), sin(angles)]."""
    angles = shared.index_select(1, slot)
    angles = angles if mult is None else angles * mult  # [H, R]
    cos, sin = angles.cos(), angles.sin()
    trig = torch.cat([angles.new_ones(shared.shape[0], 1), cos, sin], 1)
    return trig.index_select(1, factors).view(shared.shape[0], n_paths, depth), cos, sin
