"""The native engine against trusted references: PennyLane default.qubit and Qiskit Statevector on
200 seeded random circuits (every gate, random Pauli observables, input products), both engine
strategies, complex128 and complex64; gradients against PennyLane backprop; batching; the plan and
the memory estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qllm.circuits import build_circuit
from qllm.engine import simulate, simulate_state
from qllm.engine.estimate import estimate_bytes
from qllm.engine.fused import choose_fused
from qllm.engine.plan import make_plan
from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, inp, w
from tests.random_specs import all_gates_spec, random_spec
from tests.references import pennylane_expval, qiskit_expval

STRATEGIES = ("fused", "gates")
N_SPECS = 200


def _draw(spec: CircuitSpec, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, spec.n_inputs, generator=g, dtype=torch.float64) - 0.5) * 2 * np.pi
    wts = (torch.rand(spec.n_weights, generator=g, dtype=torch.float64) - 0.5) * 2 * np.pi
    return x, wts


def test_random_specs_cover_every_gate():
    used = {op.gate for s in range(N_SPECS) for op in random_spec(s).ops}
    assert used == set(GATES)
    sizes = {random_spec(s).n_qubits for s in range(N_SPECS)}
    assert sizes == set(range(1, 11))


@pytest.mark.parametrize("seed", range(N_SPECS))
def test_random_spec_matches_pennylane_and_qiskit(seed):
    spec = random_spec(seed)
    x, wts = _draw(spec, 2 + seed % 2, seed)
    ref_pl = pennylane_expval(spec, x, wts).numpy()
    ref_qk = qiskit_expval(spec, x, wts)
    np.testing.assert_allclose(ref_pl, ref_qk, atol=1e-8)  # the references agree with each other
    for strategy in STRATEGIES:
        got = simulate(spec, x, wts, strategy)
        assert got.dtype == torch.float64 and got.shape == ref_pl.shape
        np.testing.assert_allclose(got.numpy(), ref_pl, atol=1e-8, err_msg=strategy)
        np.testing.assert_allclose(got.numpy(), ref_qk, atol=1e-8, err_msg=strategy)
        got32 = simulate(spec, x.float(), wts.float(), strategy)
        assert got32.dtype == torch.float32
        np.testing.assert_allclose(got32.numpy(), ref_pl, atol=1e-5, err_msg=strategy)


@pytest.mark.parametrize("seed", range(5))
def test_all_gates_state_matches_pennylane(seed):
    """Whole statevectors, not only expectations: catches sign and phase errors that a Pauli
    observable may not see (PennyLane and the engine use the same global phase)."""
    import pennylane as qml

    spec = all_gates_spec(seed, n_qubits=3)
    x, wts = _draw(spec, 2, seed)
    dev = qml.device("default.qubit", wires=3)

    def state(xi):  # the exported ops, measured as a state instead of expectations
        ops = qml.tape.make_qscript(spec.to_pennylane())(xi, wts).operations
        return qml.execute([qml.tape.QuantumScript(ops, [qml.state()])], dev)[0]

    for strategy in STRATEGIES:
        got = simulate_state(spec, x, wts, strategy)
        for b in range(2):
            np.testing.assert_allclose(got[b].numpy(), state(x[b]).numpy(), atol=1e-10)


@pytest.mark.parametrize("seed", range(20))
def test_gradients_match_pennylane_backprop(seed):
    # the first spec from this seed's stream whose angles read both inputs and weights
    specs = (random_spec(1000 + 50 * seed + k, max_qubits=6) for k in range(50))
    spec = next(s for s in specs if {p.kind for op in s.ops for p in op.params} >= {"input", "weight"})
    x, wts = _draw(spec, 3, seed)
    coef = torch.randn(3, spec.n_observables, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))

    def grads(fn):
        xi = x.clone().requires_grad_(True)
        wi = wts.clone().requires_grad_(True)
        (fn(xi, wi) * coef).sum().backward()
        zero = torch.zeros_like  # a tensor nothing reads gets no .grad
        return (zero(xi) if xi.grad is None else xi.grad), (zero(wi) if wi.grad is None else wi.grad)

    ref_x, ref_w = grads(lambda a, b: pennylane_expval(spec, a, b))
    for strategy in STRATEGIES:
        gx, gw = grads(lambda a, b, s=strategy: simulate(spec, a, b, s))
        np.testing.assert_allclose(gx.numpy(), ref_x.numpy(), atol=1e-6, err_msg=strategy)
        np.testing.assert_allclose(gw.numpy(), ref_w.numpy(), atol=1e-6, err_msg=strategy)


@pytest.mark.parametrize("batch", [1, 2, 7, 64])
@pytest.mark.parametrize("strategy", ("auto",) + STRATEGIES)
def test_batched_equals_per_sample_loop(batch, strategy):
    spec = all_gates_spec(7, n_qubits=4)
    x, wts = _draw(spec, batch, batch)
    together = simulate(spec, x, wts, strategy)
    alone = torch.cat([simulate(spec, x[b:b + 1], wts, strategy) for b in range(batch)])
    torch.testing.assert_close(together, alone, atol=1e-12, rtol=0)


def test_qubit_order_basis_state():
    """X on qubit 0 of 3 gives |100> = index 4 (qubit 0 is the most significant bit), as in
    PennyLane; Qiskit calls the same state index 1 (little-endian)."""
    import pennylane as qml
    from qiskit.quantum_info import Statevector

    spec = CircuitSpec(3, (Op("X", (0,)), Op("CNOT", (0, 2))), observables=("ZII", "IZI", "IIZ"))
    x, wts = torch.zeros(1, 0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    state = simulate_state(spec, x, wts)[0]
    assert state.abs().argmax().item() == 0b101
    np.testing.assert_allclose(simulate(spec, x, wts)[0].numpy(), [-1, 1, -1])

    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def pl_state():
        qml.PauliX(0)
        qml.CNOT([0, 2])
        return qml.state()

    assert np.abs(pl_state()).argmax() == 0b101
    sv = Statevector(spec.to_qiskit())
    assert np.abs(sv.data).argmax() == 0b101  # symmetric here; use an asymmetric one too
    sv1 = Statevector(CircuitSpec(3, (Op("X", (0,)),)).to_qiskit())
    assert np.abs(sv1.data).argmax() == 0b001  # Qiskit: qubit 0 is the least significant bit
    np.testing.assert_allclose(sv1.reverse_qargs().data, simulate_state(
        CircuitSpec(3, (Op("X", (0,)),)), x, wts)[0].numpy())


def test_real_circuit_stays_real():
    spec = build_circuit(4, 2, ansatz="hardware_efficient_real")
    assert spec.is_real and make_plan(spec).real
    x, wts = _draw(spec, 3, 0)
    state = simulate_state(spec, x, wts)
    assert not state.is_complex()
    np.testing.assert_allclose(simulate(spec, x, wts).numpy(), pennylane_expval(spec, x, wts).numpy(),
                               atol=1e-10)


def test_plan_merges_micro_ops():
    # CNOT + SWAP compose into one gather; RY, RY and RZ join one single-qubit layer; CZ is a phase
    # vector; the data gates on qubit 2 cannot join the earlier layer past CZ, so they start a data
    # layer (their own segment)
    spec = CircuitSpec(3, (Op("CNOT", (0, 1)), Op("SWAP", (0, 2)), Op("RY", (1,), (w(0),)),
                           Op("RY", (1,), (w(1),)), Op("RZ", (0,), (w(2),)), Op("CZ", (1, 2)),
                           Op("RX", (2,), (inp(0),)), Op("RX", (2,), (inp(1),))), ("XXX",))
    plan = make_plan(spec)  # X readout: no diagonal gate may be dropped
    assert plan.prefix is None
    got = [(seg.data, [(m.kind, len(m.ops)) for m in seg.micros]) for seg in plan.segments]
    assert got == [(False, [("perm", 2), ("layer", 3), ("diag", 1)]), (True, [("layer", 2)])], got


def test_plan_prefix_and_trailing_fold():
    # per qubit, single-qubit gates before its first multi-qubit gate form the product state (RZ
    # on qubit 0 comes later but nothing touched qubit 0 before it); with Z observables the
    # trailing CNOTs and RZZ are folded into the sign table instead of being run
    spec = CircuitSpec(3, (Op("RY", (0,), (inp(0),)), Op("CNOT", (1, 2)), Op("RY", (2,), (w(0),)),
                           Op("RX", (1,), (w(1),)), Op("CNOT", (2, 1)), Op("RZ", (0,), (w(2),)),
                           Op("CNOT", (0, 1)), Op("RZZ", (0, 2), (w(3),))))
    plan = make_plan(spec)
    # with Z observables the RZ only meets CNOT(0, 1) and RZZ later (monomial): dropped
    assert [op.gate for op in plan.prefix.ops] == ["RY"]
    assert [op.gate for op in make_plan(spec.with_observables(["XII"])).prefix.ops] == ["RY", "RZ"]
    got = [(seg.data, [(m.kind, len(m.ops)) for m in seg.micros]) for seg in plan.segments]
    assert got == [(False, [("perm", 1), ("layer", 2)])], got
    assert plan.sign_gather is not None
    assert make_plan(spec.with_observables(["XII"])).sign_gather is None
    x, wts = _draw(spec, 3, 0)
    for obs in (spec.observables, ("XZY", "ZIZ")):
        s = spec.with_observables(obs)
        np.testing.assert_allclose(simulate(s, x, wts).numpy(), pennylane_expval(s, x, wts).numpy(),
                                   atol=1e-10)


def test_choose_fused_respects_forced_strategy():
    seg = make_plan(build_circuit(6, 2)).segments[0]
    assert choose_fused(6, seg, 1024, "fused") and not choose_fused(6, seg, 1024, "gates")
    assert not choose_fused(16, seg, 1024, "auto")  # 2^16 x 2^16 matrix never pays


def test_estimate_is_fast_and_monotonic():
    import time

    spec40 = build_circuit(40, 1)
    t = time.perf_counter()
    big = estimate_bytes(spec40, 1)
    assert time.perf_counter() - t < 1.0
    assert big > 2**40
    small = [estimate_bytes(build_circuit(n, 2), 64) for n in (2, 4, 6, 8)]
    assert small == sorted(small)
    assert estimate_bytes(build_circuit(6, 2), 128) > estimate_bytes(build_circuit(6, 2), 64)


def test_rotated_layers_absorb_their_qubit_order():
    """Layers whose Kronecker blocks span all qubits run every block on the last axis and leave
    the qubits rotated; the following Perm (or the sign table) absorbs the order."""
    spec = build_circuit(7, 3, ansatz="strongly_entangling")
    plan = make_plan(spec)
    layers = [m for seg in plan.segments for m in seg.micros if m.kind == "layer"]
    assert layers and all(m.rotated for m in layers) and plan.sign_gather is not None
    assert [k for _, k in layers[0].blocks] == [4, 3]
    x, wts = _draw(spec, 3, 5)
    for strategy in STRATEGIES:
        np.testing.assert_allclose(simulate(spec, x, wts, strategy).numpy(),
                                   pennylane_expval(spec, x, wts).numpy(), atol=1e-10)
    # simulate_state runs every gate (no sign table): its probabilities give the same values
    probs = simulate_state(spec, x, wts).abs().square()  # [B, 2^7]
    k = torch.arange(2**7)
    z = torch.stack([1.0 - 2.0 * ((k >> (6 - q)) & 1).double() for q in range(7)], -1)
    np.testing.assert_allclose((probs @ z).numpy(), simulate(spec, x, wts).numpy(), atol=1e-12)


def test_cuda_graphs_option_runs_eagerly_on_cpu():
    """cuda_graphs=True only changes CUDA training calls; CPU calls are the plain engine."""
    from qllm.backends import get_backend

    g = torch.Generator().manual_seed(4)
    spec = build_circuit(4, 2)
    x = torch.rand(16, 4, generator=g, requires_grad=True)
    w = torch.rand(spec.n_weights, generator=g, requires_grad=True)
    backend = get_backend("torch", cuda_graphs=True)
    out = backend.expval(spec, x, w)
    torch.testing.assert_close(out, simulate(spec, x, w), atol=0, rtol=0)
    assert out.grad_fn is not None and not backend.graphs.graphs
