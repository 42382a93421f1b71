"""``qllm.qiskit.Estimator`` against ``qiskit.primitives.StatevectorEstimator``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import UnitaryGate
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, random_unitary

import qllm.qiskit
from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.errors import BackendError, SpecError
from tests.fit_helpers import mse_losses

# (method, qubits, parameters): table gates and some the estimator must transpile first.
_GATES = [("rx", 1, 1), ("ry", 1, 1), ("rz", 1, 1), ("p", 1, 1), ("u", 1, 3), ("h", 1, 0),
          ("sdg", 1, 0), ("tdg", 1, 0), ("sx", 1, 0), ("y", 1, 0), ("cx", 2, 0), ("cz", 2, 0),
          ("swap", 2, 0), ("crx", 2, 1), ("cry", 2, 1), ("crz", 2, 1), ("rxx", 2, 1),
          ("ryy", 2, 1), ("rzz", 2, 1), ("rzx", 2, 1), ("ch", 2, 0), ("cp", 2, 1),
          ("ecr", 2, 0), ("iswap", 2, 0), ("ccx", 3, 0), ("cswap", 3, 0)]


def _random_circuit(n: int, depth: int, seed: int) -> QuantumCircuit:
    """A random circuit whose angles are affine (and a few nonlinear) in its parameters."""
    rng = np.random.default_rng(seed)
    p = ParameterVector("p", 5)
    qc = QuantumCircuit(n)
    for _ in range(depth):
        name, k, n_par = _GATES[rng.integers(len(_GATES))]
        if k > n:
            continue
        qubits = [int(q) for q in rng.choice(n, k, replace=False)]
        angles = []
        for _ in range(n_par):
            r = rng.random()
            if r < 0.6:
                angles.append(float(rng.uniform(-2, 2)) * p[rng.integers(5)] + float(rng.uniform(-1, 1)))
            elif r < 0.8:
                angles.append(p[rng.integers(5)] - p[rng.integers(5)])
            elif r < 0.9:
                angles.append(p[rng.integers(5)] * p[rng.integers(5)])  # nonlinear
            else:
                angles.append(float(rng.uniform(-3, 3)))
        getattr(qc, name)(*angles, *qubits)
    qc.append(UnitaryGate(random_unitary(4, seed=seed)), [0, n - 1])
    return qc


def _random_observables(n: int, count: int, seed: int) -> list[SparsePauliOp]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(rng.integers(1, 4))]
        out.append(SparsePauliOp(labels, rng.uniform(-1, 1, len(labels))))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_statevector_estimator_on_random_circuits(seed):
    n = 2 + seed % 3
    qc = _random_circuit(n, 25, seed)
    rng = np.random.default_rng(100 + seed)
    obs = [[o] for o in _random_observables(n, 3, seed)]  # shape (3, 1)
    values = rng.uniform(-np.pi, np.pi, (3, 4, qc.num_parameters))  # broadcasts with obs
    pubs = [(qc, obs, values), (qc, obs[0][0], values[0, 0])]
    ours = qllm.qiskit.Estimator().run(pubs).result()
    ref = StatevectorEstimator().run(pubs).result()
    for a, b in zip(ours, ref):
        assert a.data.evs.shape == b.data.evs.shape
        np.testing.assert_allclose(a.data.evs, b.data.evs, atol=1e-10, rtol=0)


def test_qubit_order_pinned_by_basis_states():
    """Qiskit is little-endian: X on qubit 0 flips the last character of a Pauli label."""
    qc = QuantumCircuit(3)
    qc.x(0)
    obs = [SparsePauliOp("IIZ"), SparsePauliOp("ZII"), SparsePauliOp("IZI")]
    evs = qllm.qiskit.Estimator().run([(qc, obs)]).result()[0].data.evs
    np.testing.assert_array_equal(evs, [-1.0, 1.0, 1.0])


def test_agrees_with_qllm_engine_through_to_qiskit():
    """A spec exported by ``to_qiskit`` gives the engine's own values (spec qubit i = Qiskit
    qubit i, observables reversed by ``qiskit_observables``)."""
    spec = build_circuit(n_qubits=3, n_layers=2, encoding="angle", ansatz="hardware_efficient")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, spec.n_inputs, generator=gen, dtype=torch.float64)
    w = torch.rand(spec.n_weights, generator=gen, dtype=torch.float64)
    qc = spec.to_qiskit()
    names = [p.name for p in qc.parameters]
    table = {f"x[{i}]": x[:, i] for i in range(spec.n_inputs)}
    table.update({f"θ[{j}]": w[j].expand(4) for j in range(spec.n_weights)})
    values = torch.stack([table[nm] for nm in names], -1).numpy()
    evs = qllm.qiskit.Estimator().run(
        [(qc, [spec.qiskit_observables()], values[:, None])]
    ).result()[0].data.evs
    np.testing.assert_allclose(evs, simulate(spec, x, w).numpy(), atol=1e-12)


def test_precision_adds_seeded_noise():
    qc = QuantumCircuit(1)
    qc.h(0)
    pub = [(qc, SparsePauliOp("X"), np.zeros((200, 0)))]
    a = qllm.qiskit.Estimator(default_precision=0.1, seed=3).run(pub).result()[0].data
    b = qllm.qiskit.Estimator(default_precision=0.1, seed=3).run(pub).result()[0].data
    np.testing.assert_array_equal(a.evs, b.evs)
    assert abs(a.evs.mean() - 1.0) < 0.05 and 0.07 < a.evs.std() < 0.13
    assert np.all(a.stds == 0.1)


def test_bad_input_is_refused():
    with pytest.raises(BackendError, match="default_precision must be >= 0"):
        qllm.qiskit.Estimator(default_precision=-1.0)
    with pytest.raises(BackendError, match="strategy must be one of"):
        qllm.qiskit.Estimator(strategy="quick")
    qc = QuantumCircuit(1, 1)
    qc.h(0)
    qc.measure(0, 0)
    qc.x(0)
    with pytest.raises(SpecError, match="'measure' cannot run on qllm's engine"):
        qllm.qiskit.Estimator().run([(qc, SparsePauliOp("Z"))]).result()


def _qnn(estimator, n: int = 3):
    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    fm, ansatz = zz_feature_map(n, reps=1), real_amplitudes(n, reps=1)
    return EstimatorQNN(circuit=fm.compose(ansatz), input_params=fm.parameters,
                        weight_params=ansatz.parameters, estimator=estimator,
                        gradient=ParamShiftEstimatorGradient(estimator), default_precision=0.0,
                        input_gradients=True)


def test_estimator_qnn_matches_reference_and_trains_through_torch_connector():
    from qiskit_machine_learning.connectors import TorchConnector

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 3))
    w = rng.uniform(0, 1, 6)
    ours, ref = _qnn(qllm.qiskit.Estimator()), _qnn(StatevectorEstimator())
    np.testing.assert_allclose(ours.forward(x, w), ref.forward(x, w), atol=1e-10)
    for a, b in zip(ours.backward(x, w), ref.backward(x, w)):
        np.testing.assert_allclose(a, b, atol=1e-10)

    torch.manual_seed(0)
    model = TorchConnector(ours, initial_weights=w)
    xt = torch.tensor(x, dtype=torch.float32)
    teacher = rng.uniform(0, 2 * np.pi, 6)  # a target the model can reach
    y = torch.tensor(ref.forward(x, teacher), dtype=torch.float32)
    losses = mse_losses(model, xt, y, steps=20, lr=0.1)
    assert losses[-1] < 0.5 * losses[0]


def test_sampler_registers_match_statevector_sampler_on_basis_states():
    from qiskit import ClassicalRegister, QuantumRegister
    from qiskit.primitives import StatevectorSampler

    qc = QuantumCircuit(QuantumRegister(4), ClassicalRegister(3, "a"), ClassicalRegister(2, "b"))
    qc.x([0, 3])
    qc.measure([0, 2, 3], [0, 1, 2])  # a: qubits 0, 2, 3
    qc.measure(1, 4)  # b: qubit 1 on its second bit, first bit never measured
    ours = qllm.qiskit.Sampler(seed=0).run([qc], shots=50).result()[0].data
    ref = StatevectorSampler(seed=0).run([qc], shots=50).result()[0].data
    assert ours.a.get_counts() == ref.a.get_counts() == {"101": 50}
    assert ours.b.get_counts() == ref.b.get_counts() == {"00": 50}


def test_sampler_counts_follow_exact_probabilities():
    from qiskit.quantum_info import Statevector
    from scipy import stats

    qc = _random_circuit(3, 20, seed=9)
    values = np.random.default_rng(9).uniform(-np.pi, np.pi, (2, qc.num_parameters))
    measured = qc.copy()
    measured.measure_all()
    run = lambda seed: qllm.qiskit.Sampler(seed=seed).run(  # noqa: E731
        [(measured, values)], shots=20000).result()[0].data.meas
    first, again = run(5), run(5)
    assert first.get_counts(0) == again.get_counts(0)
    for row in range(2):
        exact = Statevector(qc.assign_parameters(values[row])).probabilities_dict()
        counts = first.get_counts(row)
        keys = [k for k, p in exact.items() if p > 1e-9]
        observed = np.array([counts.get(k, 0) for k in keys])
        expected = np.array([exact[k] for k in keys]) * observed.sum() / sum(exact[k] for k in keys)
        assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_sampler_refuses_bad_input():
    with pytest.raises(BackendError, match="default_shots must be a positive int"):
        qllm.qiskit.Sampler(default_shots=0)
    qc = QuantumCircuit(1, 1)
    qc.measure(0, 0)
    qc.h(0)
    with pytest.raises(SpecError, match="'measure' cannot run on qllm's engine"):
        qllm.qiskit.Sampler().run([qc]).result()
