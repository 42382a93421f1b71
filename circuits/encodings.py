"""Data encodings: CircuitSpecs whose angles read the input features (no weights)."""

from __future__ import annotations

from qllm.errors import SpecError
from qllm.spec import CircuitSpec, Op, inp


def _check(n_qubits: int) -> None:
    if not isinstance(n_qubits, int) or n_qubits < 1:
        raise SpecError(f"n_qubits must be an int >= 1, got {n_qubits!r}")


def angle_encoding(n_qubits: int, rotation: str = "RY") -> CircuitSpec:
    """One feature per qubit as a rotation angle: ``R(x_i)`` on qubit i.

    Source: Schuld & Petruccione, *Supervised Learning with Quantum Computers* (2018), ch. 5.
    """
    _check(n_qubits)
    if rotation not in ("RX", "RY", "RZ"):
        raise SpecError(f"rotation must be 'RX', 'RY' or 'RZ', got {rotation!r}")
    ops = [Op("H", (q,)) for q in range(n_qubits)] if rotation == "RZ" else []
    ops += [Op(rotation, (q,), (inp(q),)) for q in range(n_qubits)]
    return CircuitSpec(n_qubits, tuple(ops), n_inputs=n_qubits, name=f"angle_{rotation.lower()}")


def dense_angle_encoding(n_qubits: int) -> CircuitSpec:
    """Two features per qubit: ``RY(x_2i)`` then ``RZ(x_2i+1)``.

    Source: LaRose & Coyle, "Robust data encodings for quantum classifiers", PRA 102, 032420 (2020).
    """
    _check(n_qubits)
    ops = []
    for q in range(n_qubits):
        ops += [Op("RY", (q,), (inp(2 * q),)), Op("RZ", (q,), (inp(2 * q + 1),))]
    return CircuitSpec(n_qubits, tuple(ops), n_inputs=2 * n_qubits, name="dense_angle")


def iqp_encoding(n_qubits: int, reps: int = 1) -> CircuitSpec:
    """IQP-style: Hadamards, ``RZ(x_i)``, and ``RZZ(x_i x_j)`` on every pair, repeated ``reps``.

    Source: Havlíček et al., "Supervised learning with quantum-enhanced feature spaces", Nature 567
    (2019); the same pattern as PennyLane's ``IQPEmbedding``.
    """
    _check(n_qubits)
    ops = []
    for _ in range(reps):
        ops += [Op("H", (q,)) for q in range(n_qubits)]
        ops += [Op("RZ", (q,), (inp(q),)) for q in range(n_qubits)]
        ops += [Op("RZZ", (i, j), (inp((i, j)),))
                for i in range(n_qubits) for j in range(i + 1, n_qubits)]
    return CircuitSpec(n_qubits, tuple(ops), n_inputs=n_qubits, name="iqp")


ENCODINGS = {
    "angle": angle_encoding,
    "angle_rx": lambda n: angle_encoding(n, "RX"),
    "dense_angle": dense_angle_encoding,
    "iqp": iqp_encoding,
}
