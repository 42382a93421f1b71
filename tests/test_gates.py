"""Every gate matrix against qiskit.quantum_info.Operator (100 seeded draws each) and PennyLane's
qml.matrix; the table's flags (real, diagonal phases, permutations, frequencies) against the
matrices themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qllm.errors import SpecError
from qllm.gates import GATES, gate
from qllm.spec import CircuitSpec, Op, w

N_DRAWS = 100


def _angles(g, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(N_DRAWS, g.n_params, generator=gen, dtype=torch.float64) - 0.5) * 4 * math.pi


def _one_gate_spec(name: str) -> CircuitSpec:
    g = GATES[name]
    return CircuitSpec(g.n_qubits, (Op(name, tuple(range(g.n_qubits)),
                                       tuple(w(i) for i in range(g.n_params))),))


@pytest.mark.parametrize("name", list(GATES))
def test_matrix_matches_qiskit_operator(name):
    """The spec's Qiskit export of one gate (Rot -> U with a global phase, RBS -> XXPlusYYGate)
    has exactly our matrix once Qiskit's little-endian qubit order is reversed."""
    from qiskit.quantum_info import Operator

    g = GATES[name]
    angles = _angles(g, seed=sum(map(ord, name)))
    ours = g.matrix(angles).numpy()  # [N, d, d]: the batched call is what the engine uses
    assert ours.shape == (N_DRAWS, 2**g.n_qubits, 2**g.n_qubits)
    qc = _one_gate_spec(name).to_qiskit()
    params = list(qc.parameters)
    for i in range(N_DRAWS if g.n_params else 1):
        bound = qc.assign_parameters({p: float(angles[i, p.index]) for p in params})
        ref = Operator(bound).reverse_qargs().data
        np.testing.assert_allclose(ours[i], ref, atol=1e-12, err_msg=f"{name} draw {i}")


@pytest.mark.parametrize("name", list(GATES))
def test_matrix_matches_pennylane(name):
    import pennylane as qml

    g = GATES[name]
    angles = _angles(g, seed=7 + len(name))[:10]
    ours = g.matrix(angles).numpy()
    op_cls = getattr(qml, g.pennylane)
    for i in range(len(angles)):
        args = [float(a) for a in angles[i]]
        if name == "RBS":  # RBS(theta) = SingleExcitation(-2 theta)
            args = [-2 * args[0]]
        ref = qml.matrix(op_cls(*args, wires=list(range(g.n_qubits))))
        np.testing.assert_allclose(ours[i], ref, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", list(GATES))
def test_matrix_is_unitary_and_dtype_follows_flags(name):
    g = GATES[name]
    for real_dtype in (torch.float32, torch.float64):
        m = g.matrix(_angles(g, 1)[:5].to(real_dtype))
        if g.real:
            assert m.dtype == real_dtype
        else:
            assert m.dtype == (torch.complex64 if real_dtype == torch.float32 else torch.complex128)
        m = m.to(torch.complex128)
        eye = torch.eye(m.shape[-1], dtype=m.dtype).expand_as(m)
        torch.testing.assert_close(m @ m.mH, eye, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [n for n, g in GATES.items() if g.diag_phases is not None])
def test_diag_phases_reproduce_matrix(name):
    g = GATES[name]
    phases = torch.tensor(g.diag_phases, dtype=torch.float64)
    angles = _angles(g, 2)[:10]
    coeff = angles[:, 0:1] if g.n_params else torch.ones(10, 1, dtype=torch.float64)
    expect = torch.diag_embed(torch.polar(torch.ones(10, len(phases), dtype=torch.float64),
                                          coeff * phases))
    torch.testing.assert_close(g.matrix(angles).to(torch.complex128), expect, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", [n for n, g in GATES.items() if g.permutation is not None])
def test_permutation_reproduces_matrix(name):
    g = GATES[name]
    m = g.matrix(torch.zeros(0, dtype=torch.float64)).numpy()
    # column j of a permutation matrix has its 1 in row permutation[j]
    assert [int(np.argmax(m[:, j])) for j in range(m.shape[1])] == list(g.permutation)
    assert np.allclose(np.abs(m).sum(0), 1) and np.isrealobj(m)


@pytest.mark.parametrize("name", [n for n, g in GATES.items() if g.n_params])
def test_frequencies_are_generator_eigenvalue_gaps(name):
    """U(theta) = exp(-i theta G) around theta = 0: the positive gaps between eigenvalues of G set
    the parameter-shift rule, and must equal the table's ``frequencies``."""
    g = GATES[name]
    h = 1e-6
    gaps = set()
    for j in range(g.n_params):
        e = torch.zeros(1, g.n_params, dtype=torch.float64)
        e[0, j] = h
        base = torch.zeros(1, g.n_params, dtype=torch.float64)
        u0 = g.matrix(base).to(torch.complex128)[0]
        du = (g.matrix(base + e) - g.matrix(base - e)).to(torch.complex128)[0] / (2 * h)
        gen = 1j * (u0.mH @ du)  # the generator at theta = 0
        torch.testing.assert_close(gen, gen.mH, atol=1e-6, rtol=0)
        ev = torch.linalg.eigvalsh(gen).numpy()
        gaps |= {round(float(abs(a - b)), 6) for a in ev for b in ev if abs(a - b) > 1e-6}
    assert gaps == set(g.frequencies), (name, gaps)


def test_unknown_gate_names_the_allowed_ones():
    with pytest.raises(SpecError, match="unknown gate 'FOO'.*RX"):
        gate("FOO")
    with pytest.raises(SpecError, match="unknown gate"):
        Op("CNOTT", (0, 1))


def test_every_gate_has_export_names():
    import pennylane as qml
    from qiskit import QuantumCircuit

    for name, g in GATES.items():
        assert hasattr(qml, g.pennylane), name
        assert name in ("Rot", "RBS") or hasattr(QuantumCircuit, g.qiskit), name
