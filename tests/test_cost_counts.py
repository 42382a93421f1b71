"""qllm.cost counts: gate counts against PennyLane's specs and a direct qiskit.transpile,
execution counts against qml.Tracker and the analytic formulas."""


import pytest
import torch
from torch import nn

from qllm.backends import get_backend
from qllm.circuits import build_circuit
from qllm.cost import (
    CostLedger,
    analytic_executions,
    get_target,
    logical_counts,
    measurement_groups,
    shift_terms,
    transpiled_counts,
)
from qllm.gates import GATES
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, const, inp, w
from tests.random_specs import random_spec as _random_spec


def random_spec(seed: int) -> CircuitSpec:
    """Small enough for the 5-qubit targets (FakeManilaV2)."""
    return _random_spec(seed, max_qubits=5, n_ops=14)


SEEDS = range(20)


# -- static counts --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_logical_counts_match_pennylane_specs(seed):
    import pennylane as qml

    spec = random_spec(seed)
    qnode = qml.QNode(spec.to_pennylane(), qml.device("default.qubit", wires=spec.n_qubits))
    x = torch.rand(max(spec.n_inputs, 1), dtype=torch.float64)
    wts = torch.rand(max(spec.n_weights, 1), dtype=torch.float64)
    res = qml.specs(qnode, level="device")(x, wts).resources
    ours = logical_counts(spec)
    # every gate in the table runs natively on default.qubit: names map one to one
    assert {GATES[g].pennylane: c for g, c in ours.ops.items()} == dict(res.gate_types)
    assert ours.n_gates == res.num_gates
    assert ours.depth == res.depth
    assert (ours.n_1q, ours.n_2q) == (res.gate_sizes.get(1, 0), res.gate_sizes.get(2, 0))


def _direct_counts(tq):
    """Counts read straight off a transpiled QuantumCircuit with Qiskit's own methods."""
    ops = {k: v for k, v in tq.count_ops().items() if k not in ("measure", "barrier")}
    return {"ops": ops, "n_2q": tq.num_nonlocal_gates(), "depth": tq.depth(),
            "depth_2q": tq.depth(lambda i: i.operation.num_qubits == 2),
            "n_1q": sum(v for k, v in ops.items()) - tq.num_nonlocal_gates()}


@pytest.mark.parametrize("seed", SEEDS)
def test_transpiled_counts_match_direct_transpile(seed):
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    spec = random_spec(seed)
    direct = transpile(spec.to_qiskit(), backend=FakeManilaV2(), optimization_level=1,
                       seed_transpiler=11)
    ours = transpiled_counts(spec, "ibm_manila", optimization_level=1, seed=11)
    ref = _direct_counts(direct)
    assert ours.ops == ref["ops"]
    assert (ours.n_1q, ours.n_2q, ours.depth, ours.depth_2q) == (
        ref["n_1q"], ref["n_2q"], ref["depth"], ref["depth_2q"])
    assert set(ours.ops) <= {"rz", "sx", "x", "cx"}  # Manila's native gates only


def test_ion_target_all_to_all_and_torino_counts():
    from qiskit import transpile

    spec = build_circuit(n_qubits=6, n_layers=2, ansatz="strongly_entangling")
    ion = transpiled_counts(spec, "ionq_aria")
    assert set(ion.ops) <= {"rx", "ry", "rz", "rxx"}
    # all-to-all: no routing, so exactly one RXX per logical CNOT
    assert ion.n_2q == logical_counts(spec).n_2q
    torino = get_target("ibm_torino")
    direct = transpile(spec.to_qiskit(), optimization_level=1, seed_transpiler=7,
                       **torino.transpile_kwargs())
    ours = transpiled_counts(spec, "ibm_torino")
    ref = _direct_counts(direct)
    assert (ours.ops, ours.n_2q, ours.depth, ours.depth_2q) == (
        ref["ops"], ref["n_2q"], ref["depth"], ref["depth_2q"])
    assert "cz" in ours.ops and ours.n_2q >= ion.n_2q  # heavy-hex routing adds 2-qubit gates


def test_measurement_groups():
    spec = build_circuit(n_qubits=2, n_layers=1)
    assert measurement_groups(spec) == 1  # Z on each qubit
    assert measurement_groups(spec.with_observables(["XI", "ZI"])) == 2
    assert measurement_groups(spec.with_observables(["XZ", "XI", "IZ", "YY"])) == 2


# -- execution counts -----------------------------------------------------------------------
def test_shift_terms_follow_gate_frequencies():
    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CRX", (0, 1), (w(0),)),
                           Op("RBS", (0, 1), (w(1),)), Op("Rot", (1,), (w(2), const(0.3), w(3))),
                           Op("RZ", (1,), (const(1.0),))))
    # CRX {0.5, 1}: 4 terms; RBS {1, 2}: 4; Rot: 2 per shifted angle (2 of 3); RY input: 2
    assert shift_terms(spec, inputs_trainable=False) == 4 + 4 + 2 + 2
    assert shift_terms(spec, inputs_trainable=True) == 2 + 4 + 4 + 2 + 2
    assert analytic_executions(spec, 7, "spsa", n_spsa_samples=3) == 7 * (1 + 6)
    assert analytic_executions(spec, 7, "backprop") == 7


def _pennylane_native(method, shots):
    """A PennyLane backend whose QNode differentiates itself (diff_method)."""
    backend = get_backend("pennylane:default.qubit", diff_method=method, shots=shots)
    assert backend.supports_backprop  # autograd reaches PennyLane, which runs the shift rule
    return backend


@pytest.mark.parametrize("method", ["parameter-shift", "spsa"])
def test_ledger_matches_tracker_and_formula_on_pennylane(method):
    import pennylane as qml

    spec = build_circuit(n_qubits=3, n_layers=2)  # 3 RY inputs, 12 RY/RZ weights
    B, shots = 5, 100
    layer = QuantumLayer(spec, backend=_pennylane_native(method, shots))
    x = torch.rand(B, spec.n_inputs)  # PennyLane cannot shift broadcast inputs: weights only
    ledger = CostLedger(layer)
    with ledger.step("train"):
        layer(x).sum().backward()
    counted = ledger.totals("train")
    expected = analytic_executions(spec, B, method, inputs_trainable=False)
    assert expected == (B * (1 + 2 * 12) if method == "parameter-shift" else B * 3)
    assert (counted.circuits, counted.shots) == (expected, expected * shots)
    # an independent tracker on a second, identical layer
    twin = QuantumLayer(spec, backend=_pennylane_native(method, shots))
    with qml.Tracker(twin.backend.qnode(spec).device) as tr:
        twin(x).sum().backward()
    assert (tr.totals["executions"], tr.totals["shots"]) == (expected, expected * shots)
    assert ledger.to_dict()["totals"]["train"]["circuits"] == expected


@pytest.mark.parametrize("method", ["parameter-shift", "spsa"])
@pytest.mark.parametrize("backend", ["pennylane:default.qubit", "aer", "pennylane-ps"])
def test_ledger_counts_qllm_gradients(method, backend):
    """qllm.backends.gradients runs every shifted circuit through backend.expval: stats count them, for
    input and weight gradients alike, and PennyLane's tracker agrees."""
    import pennylane as qml

    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CRX", (0, 1), (w(0),)),
                           Op("RBS", (0, 1), (w(1),)), Op("RZ", (1,), (inp(1),))))
    B, shots = 3, 64
    options = {"shots": shots}
    if backend == "pennylane-ps":  # a QNode that could shift itself; qllm.backends.gradients runs instead
        backend, options["diff_method"] = "pennylane:default.qubit", "parameter-shift"
    layer = QuantumLayer(spec, backend=backend, gradient=method, spsa_samples=2, **options)
    x = torch.rand(B, spec.n_inputs, requires_grad=True)
    ledger = CostLedger(layer)
    tracker = None
    with ledger.step():
        if backend.startswith("pennylane"):
            from qllm.backends.gradients import (
                angle_spec,  # the circuit qllm.backends.gradients executes
            )

            tracker = qml.Tracker(layer.backend.qnode(angle_spec(spec)[0]).device)
            tracker.__enter__()
        layer(x).sum().backward()
        if tracker is not None:
            tracker.__exit__(None, None, None)
    expected = analytic_executions(spec, B, method, n_spsa_samples=2, inputs_trainable=True)
    by_hand = B * (1 + 2 + 4 + 4 + 2) if method == "parameter-shift" else B * (1 + 4)
    assert expected == by_hand
    assert (ledger.totals().circuits, ledger.totals().shots) == (expected, expected * shots)
    assert ledger.totals().jobs == 2  # the forward, and all shifted circuits in one job
    if tracker is not None:
        assert (tracker.totals["executions"], tracker.totals["shots"]) == (expected,
                                                                          expected * shots)


def test_ledger_torch_backprop_counts_forward_only():
    model = nn.Sequential(nn.Linear(6, 4), QuantumLayer(build_circuit(4, 1)), nn.Linear(4, 2))
    ledger = CostLedger(model)
    x = torch.rand(3, 7, 6)
    with ledger.step("train"):
        model(x).sum().backward()
    with ledger.step("inference"), torch.no_grad():
        model(x[:1])
    assert ledger.totals("train").circuits == 21 == analytic_executions(
        build_circuit(4, 1), 21, "backprop")
    assert ledger.totals("inference").circuits == 7
    assert list(ledger.per_layer()) == ["1"]
