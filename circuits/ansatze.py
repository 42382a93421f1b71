"""Ansatz families: CircuitSpecs whose angles are trainable weights (weights numbered in order)."""

from __future__ import annotations

from itertools import count

from qllm.errors import SpecError
from qllm.spec import CircuitSpec, Op, w


def _check(n_qubits: int, n_layers: int) -> None:
    if not isinstance(n_qubits, int) or n_qubits < 1:
        raise SpecError(f"n_qubits must be an int >= 1, got {n_qubits!r}")
    if not isinstance(n_layers, int) or n_layers < 1:
        raise SpecError(f"n_layers must be an int >= 1, got {n_layers!r}")


def _ring(n_qubits: int, gate: str = "CNOT") -> list[Op]:
    if n_qubits == 1:
        return []
    if n_qubits == 2:
        return [Op(gate, (0, 1))]
    return [Op(gate, (q, (q + 1) % n_qubits)) for q in range(n_qubits)]


def hardware_efficient(n_qubits: int, n_layers: int, rotations: tuple[str, ...] = ("RY", "RZ"),
                       entangler: str = "CNOT") -> CircuitSpec:
    """Per layer: a rotation on every qubit for each of ``rotations``, then a ring of ``entangler``.

    Source: Kandala et al., "Hardware-efficient variational quantum eigensolver for small molecules
    and quantum magnets", Nature 549 (2017). ``rotations=("RY",)`` keeps the circuit real.
    """
    _check(n_qubits, n_layers)
    k = count()
    ops = []
    for _ in range(n_layers):
        for q in range(n_qubits):
            ops += [Op(r, (q,), (w(next(k)),)) for r in rotations]
        ops += _ring(n_qubits, entangler)
    return CircuitSpec(n_qubits, tuple(ops), name="hardware_efficient")


def strongly_entangling(n_qubits: int, n_layers: int) -> CircuitSpec:
    """``Rot`` on every qubit, then CNOTs from qubit i to i + r (mod n) with range r = l mod (n-1) + 1.

    Source: Schuld, Bocharov, Svore & Wiebe, "Circuit-centric quantum classifiers", PRA 101, 032308
    (2020); the same layout as PennyLane's ``StronglyEntanglingLayers``.
    """
    _check(n_qubits, n_layers)
    k = count()
    ops = []
    for layer in range(n_layers):
        for q in range(n_qubits):
            ops.append(Op("Rot", (q,), (w(next(k)), w(next(k)), w(next(k)))))
        if n_qubits > 1:
            r = layer % (n_qubits - 1) + 1
            ops += [Op("CNOT", (q, (q + r) % n_qubits)) for q in range(n_qubits)]
    return CircuitSpec(n_qubits, tuple(ops), name="strongly_entangling")


def basic_entangler(n_qubits: int, n_layers: int, rotation: str = "RX") -> CircuitSpec:
    """One rotation per qubit, then a CNOT ring.

    Source: PennyLane's ``BasicEntanglerLayers``; the circuit family of Farhi & Neven,
    arXiv:1802.06002 (2018).
    """
    spec = hardware_efficient(n_qubits, n_layers, (rotation,))
    return CircuitSpec(n_qubits, spec.ops, name="basic_entangler")


def sim14(n_qubits: int, n_layers: int) -> CircuitSpec:
    """Circuit 14 of Sim, Johnson & Aspuru-Guzik, "Expressibility and entangling capability of
    parameterized quantum circuits", Adv. Quantum Technol. 2, 1900070 (2019): RY layer, a CRX ring
    of range 1, RY layer, a CRX ring of range -1 (reversed direction)."""
    _check(n_qubits, n_layers)
    k = count()
    ops = []
    n = n_qubits
    for _ in range(n_layers):
        ops += [Op("RY", (q,), (w(next(k)),)) for q in range(n)]
        if n > 1:
            ops += [Op("CRX", (q, (q + 1) % n), (w(next(k)),)) for q in reversed(range(n))]
        ops += [Op("RY", (q,), (w(next(k)),)) for q in range(n)]
        if n > 1:
            order = [n - 1] + list(range(n - 1))
            ops += [Op("CRX", (q, (q - 1) % n), (w(next(k)),)) for q in order]
    return CircuitSpec(n, tuple(ops), name="sim14")


def rbs_pyramid(n_qubits: int, n_layers: int = 1) -> CircuitSpec:
    """Orthogonal layer: a triangle of n(n-1)/2 nearest-neighbour RBS gates per layer, which
    implements an orthogonal matrix on the unary (Hamming-weight-1) subspace.

    Source: Landman et al., "Quantum methods for neural networks and application to medical image
    classification", Quantum 6, 881 (2022); Kerenidis, Landman & Mathur, "Classical and quantum
    algorithms for orthogonal neural networks", arXiv:2106.07198.
    """
    _check(n_qubits, n_layers)
    if n_qubits < 2:
        raise SpecError("rbs_pyramid needs n_qubits >= 2")
    k = count()
    ops = []
    for _ in range(n_layers):
        for top in range(n_qubits - 1, 0, -1):
            ops += [Op("RBS", (q, q + 1), (w(next(k)),)) for q in range(top)]
    return CircuitSpec(n_qubits, tuple(ops), name="rbs_pyramid")


def rx_ry_cnot(n_qubits: int, n_layers: int) -> CircuitSpec:
    """RX and RY on every qubit, then a CNOT ring: the ansatz of quantum self-attention networks.

    Source: Li et al., "Quantum Self-Attention Neural Networks for Text Classification",
    arXiv:2205.05625 (QSANN, 2022).
    """
    spec = hardware_efficient(n_qubits, n_layers, ("RX", "RY"))
    return CircuitSpec(n_qubits, spec.ops, name="rx_ry_cnot")


ANSATZE = {
    "hardware_efficient": hardware_efficient,
    "hardware_efficient_real": lambda n, l: hardware_efficient(n, l, ("RY",)),
    "strongly_entangling": strongly_entangling,
    "basic_entangler": basic_entangler,
    "sim14": sim14,
    "rbs_pyramid": rbs_pyramid,
    "rx_ry_cnot": rx_ry_cnot,
}
