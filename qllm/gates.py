"""The gate table: one definition per gate, shared by every backend and exporter.

Matrices use PennyLane's wire order: the first wire of a gate is the most significant bit.
A matrix function takes parameters ``[..., n_params]`` (real) and returns ``[..., d, d]``;
gates flagged ``real`` return a real matrix so real-valued circuits can be simulated in real
arithmetic, all others return the complex dtype matching the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from qllm.errors import SpecError, lookup


def complex_dtype(real_dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if real_dtype == torch.float64 else torch.complex64


@dataclass(frozen=True)
class GateDef:
    name: str
    n_qubits: int
    n_params: int
    matrix: Callable[[torch.Tensor], torch.Tensor]
    real: bool = False  # real matrix for real parameters
    # Diagonal gates are exp(i * angle * phases) (or exp(i * phases) without parameters), one phase
    # per basis state of the gate's wires: runs of them collapse into one phase vector.
    diag_phases: tuple[float, ...] | None = None
    permutation: tuple[int, ...] | None = None  # parameter-free basis permutations (X, CNOT, SWAP)
    # Frequencies of each parameter (differences of generator eigenvalues): they fix the
    # parameter-shift rule (two terms for {1}, four for {0.5, 1}).
    frequencies: tuple[float, ...] = (1.0,)
    # dU/dtheta_k = U(theta + pi e_k) / 2 for every parameter: each is the angle of a Pauli
    # rotation exp(-i theta P / 2) (engine/shift.py builds the encoding's derivatives as evaluations).
    shift_rule: bool = False
    pennylane: str = ""
    qiskit: str = ""


def _cached(m: np.ndarray, dtype: torch.dtype, device: torch.device, cache: dict) -> torch.Tensor:
    """A constant matrix, built once per dtype and device (no host-to-device copy per call)."""
    key = (dtype, device)
    if key not in cache:
        cache[key] = torch.as_tensor(m, dtype=dtype, device=device)
    return cache[key]


def _const(m: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    is_real = np.isrealobj(m)
    cache: dict = {}

    def matrix(p: torch.Tensor) -> torch.Tensor:
        dtype = p.dtype if is_real else complex_dtype(p.dtype)
        return _cached(m, dtype, p.device, cache).expand(*p.shape[:-1], *m.shape)

    return matrix


def _mat(entries: list[torch.Tensor], d: int) -> torch.Tensor:
    return torch.stack(entries, -1).unflatten(-1, (d, d))


def _cs(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = theta * 0.5
    return torch.cos(half), torch.sin(half)


def _phase(angle: torch.Tensor) -> torch.Tensor:
    return torch.polar(torch.ones_like(angle), angle)


def _rx(p):
    c, s = _cs(p[..., 0])
    c, s = c.to(complex_dtype(p.dtype)), s.to(complex_dtype(p.dtype))
    return _mat([c, -1j * s, -1j * s, c], 2)


def _ry(p):
    c, s = _cs(p[..., 0])
    return _mat([c, -s, s, c], 2)


def _rz(p):
    e = _phase(-p[..., 0] / 2)
    z = torch.zeros_like(e)
    return _mat([e, z, z, e.conj()], 2)


def _phaseshift(p):
    e = _phase(p[..., 0])
    one, z = torch.ones_like(e), torch.zeros_like(e)
    return _mat([one, z, z, e], 2)


def _rot(p):
    # Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)  (PennyLane's convention)
    phi, theta, omega = p[..., 0], p[..., 1], p[..., 2]
    c, s = _cs(theta)
    return _mat([
        _phase(-(phi + omega) / 2) * c, -_phase((phi - omega) / 2) * s,
        _phase(-(phi - omega) / 2) * s, _phase((phi + omega) / 2) * c,
    ], 2)


def _u3(p):
    # U3(theta, phi, delta) = Qiskit's U(theta, phi, lambda)
    theta, phi, lam = p[..., 0], p[..., 1], p[..., 2]
    c, s = _cs(theta)
    c = c.to(complex_dtype(p.dtype))
    return _mat([c, -_phase(lam) * s, _phase(phi) * s, _phase(phi + lam) * c], 2)


def _controlled(base: Callable[[torch.Tensor], torch.Tensor]):
    def matrix(p):
        m = base(p)
        out = torch.zeros(*m.shape[:-2], 4, 4, dtype=m.dtype, device=m.device)
        out.diagonal(0, -2, -1)[..., :2].fill_(1)  # fill_, not "= 1": no host copy (CUDA graphs)
        out[..., 2:, 2:] = m
        return out

    return matrix


def _pauli_pair(pp: np.ndarray):
    eye_cache: dict = {}
    pauli_cache: dict = {}

    def matrix(p):
        c, s = _cs(p[..., 0])
        cd = complex_dtype(p.dtype)
        eye = _cached(np.eye(4), cd, p.device, eye_cache)
        pauli = _cached(pp, cd, p.device, pauli_cache)
        return c.to(cd)[..., None, None] * eye - 1j * s.to(cd)[..., None, None] * pauli

    return matrix


def _rzz(p):
    e = _phase(-p[..., 0] / 2)
    z = torch.zeros_like(e)
    f = e.conj()
    return _mat([e, z, z, z, z, f, z, z, z, z, f, z, z, z, z, e], 4)


def _rbs(p):
    # Reconfigurable beam splitter: a Givens rotation on span{|01>, |10>} (Landman et al. 2022).
    c, s = torch.cos(p[..., 0]), torch.sin(p[..., 0])
    one, z = torch.ones_like(c), torch.zeros_like(c)
    return _mat([one, z, z, z, z, c, s, z, z, -s, c, z, z, z, z, one], 4)


_X = np.array([[0, 1], [1, 0]], dtype=float)
_Y = np.array([[0, -1j], [1j, 0]])
_Z = np.array([[1, 0], [0, -1]], dtype=float)
_H = np.array([[1, 1], [1, -1]], dtype=float) / math.sqrt(2)
_SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2
_CNOT = np.eye(4)[[0, 1, 3, 2]]
_SWAP = np.eye(4)[[0, 2, 1, 3]]
_CZ = np.diag([1.0, 1.0, 1.0, -1.0])

GATES: dict[str, GateDef] = {g.name: g for g in [
    GateDef("RX", 1, 1, _rx, shift_rule=True, pennylane="RX", qiskit="rx"),
    GateDef("RY", 1, 1, _ry, real=True, shift_rule=True, pennylane="RY", qiskit="ry"),
    GateDef("RZ", 1, 1, _rz, diag_phases=(-0.5, 0.5), shift_rule=True,
            pennylane="RZ", qiskit="rz"),
    GateDef("PhaseShift", 1, 1, _phaseshift, diag_phases=(0.0, 1.0), pennylane="PhaseShift",
            qiskit="p"),
    GateDef("Rot", 1, 3, _rot, shift_rule=True, pennylane="Rot", qiskit="rot"),
    GateDef("U3", 1, 3, _u3, pennylane="U3", qiskit="u"),
    GateDef("H", 1, 0, _const(_H), real=True, pennylane="Hadamard", qiskit="h"),
    GateDef("X", 1, 0, _const(_X), real=True, permutation=(1, 0), pennylane="PauliX", qiskit="x"),
    GateDef("Y", 1, 0, _const(_Y), pennylane="PauliY", qiskit="y"),
    GateDef("Z", 1, 0, _const(_Z), real=True, diag_phases=(0.0, math.pi), pennylane="PauliZ",
            qiskit="z"),
    GateDef("S", 1, 0, _const(np.diag([1, 1j])), diag_phases=(0.0, math.pi / 2), pennylane="S",
            qiskit="s"),
    GateDef("T", 1, 0, _const(np.diag([1, np.exp(1j * math.pi / 4)])),
            diag_phases=(0.0, math.pi / 4), pennylane="T", qiskit="t"),
    GateDef("SX", 1, 0, _const(_SX), pennylane="SX", qiskit="sx"),
    GateDef("CNOT", 2, 0, _const(_CNOT), real=True, permutation=(0, 1, 3, 2), pennylane="CNOT",
            qiskit="cx"),
    GateDef("CZ", 2, 0, _const(_CZ), real=True, diag_phases=(0.0, 0.0, 0.0, math.pi),
            pennylane="CZ", qiskit="cz"),
    GateDef("SWAP", 2, 0, _const(_SWAP), real=True, permutation=(0, 2, 1, 3), pennylane="SWAP",
            qiskit="swap"),
    GateDef("CRX", 2, 1, _controlled(_rx), frequencies=(0.5, 1.0), pennylane="CRX", qiskit="crx"),
    GateDef("CRY", 2, 1, _controlled(_ry), real=True, frequencies=(0.5, 1.0), pennylane="CRY",
            qiskit="cry"),
    GateDef("CRZ", 2, 1, _controlled(_rz), diag_phases=(0.0, 0.0, -0.5, 0.5),
            frequencies=(0.5, 1.0), pennylane="CRZ", qiskit="crz"),
    GateDef("RXX", 2, 1, _pauli_pair(np.kron(_X, _X)), shift_rule=True,
            pennylane="IsingXX", qiskit="rxx"),
    GateDef("RYY", 2, 1, _pauli_pair(np.kron(_Y, _Y)), shift_rule=True,
            pennylane="IsingYY", qiskit="ryy"),
    GateDef("RZZ", 2, 1, _rzz, diag_phases=(-0.5, 0.5, 0.5, -0.5), shift_rule=True,
            pennylane="IsingZZ",
            qiskit="rzz"),
    # RBS(theta) = PennyLane SingleExcitation(-2 theta) = Qiskit XXPlusYYGate(2 theta, pi/2).
    GateDef("RBS", 2, 1, _rbs, real=True, frequencies=(1.0, 2.0), pennylane="SingleExcitation",
            qiskit="xx_plus_yy"),
]}


def gate(name: str) -> GateDef:
    """Look up a gate by name; unknown names fail with the list of known ones."""
    return lookup(GATES, name, "gate", SpecError)
