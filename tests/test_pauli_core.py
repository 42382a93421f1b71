"""The Heisenberg core (engine/pauli.py, pauli_walk.py) against its references: each gate's
Pauli-rotation form against the gate's matrix, each Clifford table against Qiskit's
``Pauli.evolve``, and values and gradients on seeded random circuits against plain autograd
("gates") and PennyLane default.qubit, single and stacked, float64 and float32."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from qllm.circuits import build_circuit
from qllm.engine import pauli, simulate
from qllm.engine.bloch import BlochTail, head_table, tail_tables
from qllm.engine.encode import split_prefix
from qllm.engine.estimate import estimate_bytes
from qllm.engine.pauli import pauli_program
from qllm.engine.pauli_walk import FIXED_ROTATIONS, ROTATIONS, clifford_table, walk
from qllm.engine.plan import make_plan
from qllm.engine.product import core_kind, has_core_shape
from qllm.errors import BackendError
from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, inp, w
from tests.engine_helpers import check_checkpointed, check_stacked, check_strategy, draw
from tests.random_specs import product_spec

_PAULI = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
          "Z": np.diag([1.0, -1.0])}
FIXED = [name for name, g in GATES.items() if g.n_params == 0]


def _string(letters: str) -> np.ndarray:
    out = np.eye(1)
    for c in letters:
        out = np.kron(out, _PAULI[c])
    return out


def _equal_up_to_phase(a: np.ndarray, b: np.ndarray) -> bool:
    k = np.argmax(np.abs(b))
    phase = a.flat[k] / b.flat[k]
    return np.isclose(abs(phase), 1.0) and np.allclose(a, phase * b, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ROTATIONS))
def test_each_parametric_gate_is_its_pauli_rotations(name):
    rng = np.random.default_rng(7)
    for _ in range(5):
        params = rng.uniform(-np.pi, np.pi, GATES[name].n_params)
        u = np.eye(2 ** GATES[name].n_qubits, dtype=complex)
        for letters, p, a in ROTATIONS[name]:  # time order: each factor multiplies on the left
            theta = a * params[p]
            u = (np.cos(theta / 2) * np.eye(len(u)) - 1j * np.sin(theta / 2) * _string(letters)) @ u
        ref = GATES[name].matrix(torch.tensor(params)).numpy()
        assert _equal_up_to_phase(u, ref), name


def test_every_gate_is_a_rotation_or_clifford_or_a_fixed_rotation():
    for name in FIXED:
        assert (clifford_table(name) is None) == (name in FIXED_ROTATIONS), name
    letters, angle = FIXED_ROTATIONS["T"]
    rz = np.cos(angle / 2) * np.eye(2) - 1j * np.sin(angle / 2) * _string(letters)
    assert _equal_up_to_phase(rz, GATES["T"].matrix(torch.zeros(0)).numpy())
    assert set(ROTATIONS) | set(FIXED) == set(GATES)


@pytest.mark.parametrize("name", [n for n in FIXED if n not in FIXED_ROTATIONS])
def test_clifford_tables_match_qiskit(name):
    from qiskit.quantum_info import Clifford, Operator, Pauli

    # qiskit labels list the highest qubit first, and its matrices are little-endian: with our
    # first wire most significant, a label's characters are our wires in order
    cliff = Clifford.from_operator(Operator(GATES[name].matrix(torch.zeros(0)).numpy()))
    for src, (sign, image) in clifford_table(name).items():
        label = "".join("IXYZ"[c] for c in src)
        ref = Pauli(label).evolve(cliff, frame="h")  # U^dagger P U
        got = Pauli(("" if sign > 0 else "-") + "".join("IXYZ"[c] for c in image))
        assert ref == got, (name, label, ref, got)


def _pauli_spec(seed: int) -> CircuitSpec:
    """A random quantum-FFN-shaped circuit whose fixed part draws from every gate the walk
    knows: rotations (one- and two-qubit, controlled, RBS, Rot, U3), Cliffords and T."""
    rng = random.Random(seed)
    n, n_weights = rng.randint(2, 6), 10
    ops = [Op(rng.choice(["RY", "RX", "RZ"]), (q,), (inp(q % 3),)) for q in range(n)]
    for _ in range(rng.randint(4, 12)):
        name = rng.choice(sorted(ROTATIONS) + FIXED)
        g = GATES[name]
        wires = tuple(rng.sample(range(n), g.n_qubits))
        ops.append(Op(name, wires, tuple(w(rng.randrange(n_weights), rng.choice([1.0, -0.6]))
                                         for _ in range(g.n_params))))
    ops.append(Op("CNOT", (0, 1)))  # at least one entangler: a fixed segment
    observables = tuple("".join(rng.choice("IZZ") for _ in range(n)) for _ in range(2))
    return CircuitSpec(n, tuple(ops), observables, 3, n_weights, name=f"pauli{seed}")


def _specs():
    out = [(s, _pauli_spec(s)) for s in range(30)]
    out += [(100 + s, product_spec(s, n_qubits=[2, 3, 5, 6, 8][s % 5])) for s in range(30)]
    return [(s, spec) for s, spec in out if has_core_shape(make_plan(spec))
            and make_plan(spec).segments and pauli_program(make_plan(spec)) is not None]


SPECS = _specs()


def test_random_draws_cover_the_walks_gates():
    gates = {op.gate for _, spec in SPECS for op in make_plan(spec).rest}
    assert len(SPECS) >= 40, len(SPECS)
    assert gates == set(GATES), set(GATES) - gates


@pytest.mark.parametrize("seed,spec", SPECS, ids=[s.name for _, s in SPECS])
def test_pauli_core_matches_autograd_and_pennylane(seed, spec):
    x, wts, coef = draw(spec, 32, seed)
    check_strategy(spec, "pauli", x, wts, coef, pennylane=seed % 4 == 0)


@pytest.mark.parametrize("seed,spec", SPECS[::4], ids=[s.name for _, s in SPECS[::4]])
def test_stacked_pauli_core_matches_one_by_one(seed, spec):
    check_stacked(spec, "pauli", seed, 16)


def test_second_derivatives_match_autograd():
    spec = build_circuit(5, 2)
    x, wts, _ = draw(spec, 8, 3)

    def hessian_rows(strategy):  # every op plain autograd: second derivatives of both
        gx, gw = torch.autograd.grad(simulate(spec, x, wts, strategy).sum(), (x, wts),
                                     create_graph=True)
        return torch.autograd.grad(gx[0, 0] + gw[0], (x, wts))

    for a, b in zip(hessian_rows("pauli"), hessian_rows("gates")):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_random_draws_cover_the_bloch_prefix():
    # the prefix's weight-only gates after the encoding run through BlochTail (bloch.py) ...
    kinds = {name for _, spec in SPECS for step in split_prefix(make_plan(spec))[1]
             for name, _, _ in step.parts}
    assert kinds == {name for name, g in GATES.items() if g.n_qubits == 1}, kinds
    # ... and encodings take both routes: one data rotation per qubit as features, or 2-vectors
    routes = [head_table(make_plan(spec)) is not None for _, spec in SPECS]
    assert sum(routes) >= 10 and len(routes) - sum(routes) >= 5, routes


@pytest.mark.parametrize("name", sorted(n for n, g in GATES.items() if g.n_qubits == 1))
def test_bloch_tail_rotates_bloch_vectors_as_each_gate_does(name):
    # the reference: numpy's Bloch vector of U psi, U the gate's matrix (the H after the CNOT
    # keeps a diagonal gate from being dropped as unseen by the Z readout)
    g = GATES[name]
    ops = (Op("RY", (0,), (inp(0),)), Op(name, (0,), tuple(w(i) for i in range(g.n_params))),
           Op("RY", (1,), (inp(1),)), Op("CNOT", (0, 1)), Op("H", (0,)))
    plan = make_plan(CircuitSpec(2, ops, ("ZI",), 2, max(g.n_params, 1)))
    rng = np.random.default_rng(len(name))
    params = rng.uniform(-np.pi, np.pi, max(g.n_params, 1))
    shared = plan.sources.shared(torch.tensor(params)).unsqueeze(0)
    R = BlochTail.apply(shared, tail_tables(plan), torch.float64)[0, 0].numpy()
    u = g.matrix(torch.tensor(params[:g.n_params])).numpy().astype(complex)
    for _ in range(3):
        psi = rng.normal(size=2) + 1j * rng.normal(size=2)
        psi /= np.linalg.norm(psi)
        assert np.allclose(R @ _bloch(psi), _bloch(u @ psi), atol=1e-12), name


def _bloch(psi: np.ndarray) -> np.ndarray:
    return np.array([1.0] + [np.vdot(psi, _PAULI[c] @ psi).real for c in "XYZ"])


@pytest.mark.parametrize("index", [0, 7, 31])
def test_hand_written_backwards_match_finite_differences(index):
    spec = SPECS[index][1]
    assert split_prefix(make_plan(spec))[1], "a circuit with a weight-only tail"
    x, wts, _ = draw(spec, 3, index)
    assert torch.autograd.gradcheck(lambda a, b: simulate(spec, a, b, "pauli"), (x, wts))


def test_a_retained_graph_gives_the_same_gradients_twice():
    spec = build_circuit(4, 2)
    x, wts, coef = draw(spec, 8, 5)
    loss = (simulate(spec, x, wts, "pauli") * coef).sum()
    first = torch.autograd.grad(loss, (x, wts), retain_graph=True)
    second = torch.autograd.grad(loss, (x, wts))
    ref = torch.autograd.grad((simulate(spec, x, wts, "gates") * coef).sum(), (x, wts))
    for a, b, c in zip(first, second, ref):
        torch.testing.assert_close(a, c, atol=1e-10, rtol=0)
        torch.testing.assert_close(b, c, atol=1e-10, rtol=0)


def test_checkpointed_calls_give_the_same_gradients():
    # chunk_size runs the core under torch.utils.checkpoint, which recomputes what it saved
    check_checkpointed(build_circuit(6, 2), "pauli", 9)


def test_deep_circuits_are_declined_with_the_way_out():
    spec = build_circuit(10, 6)  # the strings spread to every qubit: past MAX_PATHS
    assert pauli_program(make_plan(spec)) is None
    with pytest.raises(BackendError, match="strategy 'pauli'.*MAX_PATHS.*'kron'"):
        simulate(spec, torch.rand(2, 10), torch.rand(spec.n_weights), "pauli")
    with pytest.raises(BackendError, match="strategy 'pauli'.*product-state core's shape"):
        simulate(build_circuit(3, 1, observables=("XII",)), torch.rand(4, 3), torch.rand(6),
                 "pauli")


def test_auto_takes_it_for_shallow_circuits_past_the_dense_core():
    plan = make_plan(build_circuit(10, 2))
    assert core_kind(plan, 1024, "auto") == "pauli"
    assert core_kind(make_plan(build_circuit(10, 6)), 1024, "auto") == "kron"  # declined
    # its memory does not grow as 2^n: 12 qubits in less than the Kronecker core's state
    spec = build_circuit(12, 2)
    assert estimate_bytes(spec, 1024, strategy="pauli") < estimate_bytes(spec, 1024, strategy="kron")


@pytest.mark.parametrize("n,layers", [(5, 3), (6, 2), (9, 2)])
def test_either_cut_of_the_halves_gives_the_same_core(monkeypatch, n, layers):
    # pauli_program keeps the cut its cost model prices lower (pauli.cuts): both must be the
    # same exact sum, on the sparse readout (the feature route would take n = 5 and 6 otherwise)
    spec = build_circuit(n, layers)
    plan = make_plan(spec)
    chosen = pauli_program(plan)
    assert chosen.split == n // 2 + 1  # fewer rows of C at these sizes
    monkeypatch.setattr(pauli, "takes_features", lambda plan, batch: False)
    monkeypatch.setitem(plan.cache, "pauli", chosen)  # restored after the test
    x, wts, coef = draw(spec, 8, n)
    walked = walk(list(plan.rest), plan.observables, plan.sources)
    for cut in pauli.cuts(n):
        plan.cache["pauli"] = pauli._program(plan, *walked, cut)
        check_strategy(spec, "pauli", x, wts, coef, pennylane=cut == n // 2 and n < 9)
