"""The circuit zoo (imported as ``qllm.circuits``): encodings and ansatz families as CircuitSpec
builders, and ``build_circuit`` that combines them by name.

>>> from qllm.circuits import build_circuit
>>> spec = build_circuit(n_qubits=4, n_layers=2, encoding="angle", ansatz="hardware_efficient")
>>> spec.n_inputs, spec.n_weights
(4, 16)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qllm.circuits.ansatze import (
    ANSATZE,
    basic_entangler,
    hardware_efficient,
    rbs_pyramid,
    rx_ry_cnot,
    sim14,
    strongly_entangling,
)
from qllm.circuits.encodings import ENCODINGS, angle_encoding, dense_angle_encoding, iqp_encoding
from qllm.errors import SpecError
from qllm.spec import CircuitSpec


def register_ansatz(name: str, builder: Callable[[int, int], CircuitSpec]) -> None:
    """Make ``builder(n_qubits, n_layers) -> CircuitSpec`` available by name in configs."""
    ANSATZE[name] = builder


def register_encoding(name: str, builder: Callable[[int], CircuitSpec]) -> None:
    """Make ``builder(n_qubits) -> CircuitSpec`` available by name in configs."""
    ENCODINGS[name] = builder


def build_circuit(n_qubits: int, n_layers: int, encoding: str = "angle",
                  ansatz: str = "hardware_efficient", reupload: bool = False,
                  observables: Sequence[str] | None = None) -> CircuitSpec:
    """Encoding followed by ``n_layers`` of an ansatz; with ``reupload=True`` the encoding is
    repeated before every ansatz layer (data re-uploading: Pérez-Salinas et al., "Data
    re-uploading for a universal quantum classifier", Quantum 4, 226 (2020)).
    Observables default to Z on every qubit."""
    if encoding not in ENCODINGS:
        raise SpecError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    if ansatz not in ANSATZE:
        raise SpecError(f"unknown ansatz {ansatz!r}; allowed: {', '.join(ANSATZE)}")
    enc = ENCODINGS[encoding](n_qubits)
    if reupload:
        spec = enc.compose(ANSATZE[ansatz](n_qubits, 1))
        for _ in range(n_layers - 1):
            spec = spec.compose(enc).compose(ANSATZE[ansatz](n_qubits, 1))
    else:
        spec = enc.compose(ANSATZE[ansatz](n_qubits, n_layers))
    if observables is not None:
        spec = spec.with_observables(observables)
    else:
        spec = spec.with_observables(enc.compose(ANSATZE[ansatz](n_qubits, 1)).observables)
    name = f"{encoding}+{ansatz}" + ("+reupload" if reupload else "")
    return CircuitSpec(spec.n_qubits, spec.ops, spec.observables, spec.n_inputs, spec.n_weights, name)


__all__ = ["build_circuit", "register_ansatz", "register_encoding", "ENCODINGS", "ANSATZE",
           "angle_encoding", "dense_angle_encoding", "iqp_encoding", "hardware_efficient",
           "strongly_entangling", "basic_entangler", "sim14", "rbs_pyramid", "rx_ry_cnot"]
