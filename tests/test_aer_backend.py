"""The `aer` backend against the native engine (exact), shot statistics, seeds, fake-device noise,
batching into one job, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qllm.backends import get_backend
from qllm.backends.aer_backend import AerBackend
from qllm.engine import simulate
from qllm.errors import BackendError
from qllm.quantum_layer import QuantumLayer, use_backend
from qllm.spec import CircuitSpec, Op, inp, w
from tests.random_specs import random_spec
from tests.references import assert_shot_means_unbiased

DT = torch.float64


def _data(spec: CircuitSpec, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, spec.n_inputs, generator=g, dtype=DT) * 2 * math.pi - math.pi
    wt = torch.rand(spec.n_weights, generator=g, dtype=DT) * 2 * math.pi
    return x, wt


def test_exact_matches_native_engine_on_50_random_specs():
    backend = get_backend("aer")
    worst = 0.0
    for seed in range(50):
        spec = random_spec(seed, max_qubits=5)
        x, wt = _data(spec, 3, seed)
        got = backend.expval(spec, x, wt)
        assert got.shape == (3, spec.n_observables) and got.dtype == DT
        worst = max(worst, (got - simulate(spec, x, wt)).abs().max().item())
    assert worst < 1e-8


def test_density_matrix_method_matches_statevector_without_noise():
    spec = random_spec(7, n_qubits=3)
    x, wt = _data(spec, 4, 0)
    got = get_backend("aer:density_matrix").expval(spec, x, wt)
    torch.testing.assert_close(got, simulate(spec, x, wt), atol=1e-8, rtol=0)


def test_shot_means_lie_within_5_sigma_of_exact_over_50_specs():
    shots = 2000
    backend = get_backend("aer", shots=shots, seed=11)
    specs = [random_spec(100 + seed, max_qubits=4) for seed in range(50)]
    assert_shot_means_unbiased(backend, shots,
                               [(spec, *_data(spec, 2, seed)) for seed, spec in enumerate(specs)])


def test_same_seed_same_counts_different_seed_different_counts():
    spec = random_spec(3, n_qubits=3)
    x, wt = _data(spec, 4, 1)
    for sampling in ("probabilities", "sampler"):
        a = AerBackend(shots=500, seed=5, sampling=sampling).counts(spec, x, wt)
        b = AerBackend(shots=500, seed=5, sampling=sampling).counts(spec, x, wt)
        c = AerBackend(shots=500, seed=6, sampling=sampling).counts(spec, x, wt)
        assert a == b
        assert a != c
        assert all(sum(cnt.values()) == 500 for cnt in a)
    # and through expval, on a fake device with noise
    e1 = get_backend("aer:fake_manila", shots=300, seed=2).expval(spec, x, wt)
    e2 = get_backend("aer:fake_manila", shots=300, seed=2).expval(spec, x, wt)
    e3 = get_backend("aer:fake_manila", shots=300, seed=3).expval(spec, x, wt)
    assert torch.equal(e1, e2) and not torch.equal(e1, e3)


@pytest.mark.parametrize("sampling", ["probabilities", "sampler"])
@pytest.mark.parametrize("name", ["aer", "aer:fake_manila"])
def test_qubit_order_basis_state(name, sampling):
    # X on qubit 0 only: qllm's qubit 0 is the first character of a bitstring, <ZII> = -1.
    spec = CircuitSpec(3, (Op("X", (0,)), Op("RY", (2,), (w(0),))))
    x, wt = torch.zeros(1, 0, dtype=DT), torch.zeros(1, dtype=DT)
    counts = get_backend(name, shots=64, seed=0, noise=False, sampling=sampling).counts(spec, x, wt)
    assert counts == [{"100": 64}]
    exact = get_backend(name, noise=False).expval(spec, x, wt)
    torch.testing.assert_close(exact, torch.tensor([[-1.0, 1.0, 1.0]], dtype=DT))


def test_one_job_per_batch_and_circuit_counting():
    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CNOT", (0, 1)), Op("RX", (1,), (w(0),))),
                       observables=("ZI", "IZ", "XX"))
    x, wt = _data(spec, 32, 0)
    exact = get_backend("aer")
    exact.expval(spec, x, wt)
    assert exact.stats.as_dict() == {"circuits": 32, "shots": 0, "jobs": 1}
    for sampling in ("probabilities", "sampler"):
        sampled = get_backend("aer", shots=100, seed=0, sampling=sampling)
        sampled.expval(spec, x, wt)  # two measurement settings (ZZ and XX), one job
        assert sampled.stats.as_dict() == {"circuits": 64, "shots": 6400, "jobs": 1}


def test_fake_device_readout_error_is_applied():
    # |0> measured on FakeManila: <Z> = 1 - 2 p(1|0) of the physical qubit it was laid out on.
    from qllm.hardware.fake_devices import fake_backend

    spec = CircuitSpec(1, (Op("RX", (0,), (w(0),)),))
    x, wt = torch.zeros(1, 0, dtype=DT), torch.zeros(1, dtype=DT)
    backend = get_backend("aer:fake_manila", shots=20000, seed=4)
    est = backend.expval(spec, x, wt).item()
    exact = get_backend("aer:fake_manila").expval(spec, x, wt).item()  # exact, readout included
    phys = backend.setting_circuits(spec)[0][4][0]  # the physical qubit of spec qubit 0
    props = fake_backend("fake_manila").target["measure"][(phys,)]
    p_flip = props.error  # the calibration's readout assignment error
    sigma = math.sqrt(1 / 20000)
    assert p_flip > 0.005
    assert abs(est - (1 - 2 * p_flip)) < 5 * sigma + 0.01  # asymmetric p(1|0) vs mean error
    assert est < 1 - 5 * sigma  # measurably below the ideal 1
    assert abs(exact - (1 - 2 * p_flip)) < 0.01
    assert abs(est - exact) < 5 * sigma  # shots scatter around the exact noisy value


def test_fast_sampling_agrees_with_samplerv2_on_a_noisy_device():
    # "probabilities" (exact noisy distribution + calibrated readout + multinomial) against
    # SamplerV2 shot-by-shot simulation of the same device: same distribution, within 5 sigma;
    # and both scatter around the exact noisy value (density matrix + readout).
    shots = 20000
    for seed in (3, 8):
        spec = random_spec(seed, n_qubits=3)
        x, wt = _data(spec, 4, seed)
        exact = get_backend("aer:fake_manila").expval(spec, x, wt)
        fast = get_backend("aer:fake_manila", shots=shots, seed=1).expval(spec, x, wt)
        slow = get_backend("aer:fake_manila", shots=shots, seed=2, sampling="sampler").expval(
            spec, x, wt)
        sigma = ((1 - exact**2).clamp_min(1 / shots) / shots).sqrt()
        assert ((fast - exact).abs() < 5 * sigma).all(), seed
        assert ((slow - exact).abs() < 5 * sigma).all(), seed
        assert not torch.allclose(exact, simulate(spec, x, wt), atol=1e-3)  # noise is visible


def test_fake_device_gate_noise_shrinks_expectations():
    ops = [Op("H", (0,))] + [Op("CNOT", (0, 1))] * 10
    spec = CircuitSpec(2, tuple(ops), observables=("XI",))
    x, wt = torch.zeros(1, 0, dtype=DT), torch.zeros(0, dtype=DT)
    # optimization_level=0: level 1 would cancel the CNOT pairs
    ideal = get_backend("aer:fake_manila", noise=False, optimization_level=0).expval(spec, x, wt)
    noisy = get_backend("aer:fake_manila", optimization_level=0).expval(spec, x, wt)  # exact rho
    ideal, noisy = ideal.item(), noisy.item()
    assert ideal == pytest.approx(1.0, abs=1e-9)
    assert 0.5 < noisy < 1 - 1e-3


def test_parameterless_circuit_broadcasts_over_the_batch():
    spec = CircuitSpec(2, (Op("H", (0,)), Op("CNOT", (0, 1))), observables=("ZZ", "XX"),
                       n_inputs=1)
    x = torch.rand(5, 1, dtype=DT)
    out = get_backend("aer").expval(spec, x, torch.zeros(0, dtype=DT))
    torch.testing.assert_close(out, torch.ones(5, 2, dtype=DT))
    for sampling in ("probabilities", "sampler"):
        est = get_backend("aer", shots=50, seed=1, sampling=sampling).expval(
            spec, x, torch.zeros(0, dtype=DT))
        torch.testing.assert_close(est, torch.ones(5, 2, dtype=DT))


def test_use_backend_swaps_every_quantum_layer():
    spec = random_spec(2, n_qubits=2)
    model = torch.nn.Sequential(QuantumLayer(spec), torch.nn.Identity(), QuantumLayer(spec))
    assert use_backend(model, "aer:fake_manila", shots=128, seed=0) == 2
    assert all(m.backend.name == "aer:fake_manila" for m in model if isinstance(m, QuantumLayer))
    with torch.no_grad():
        out = model[0](torch.rand(3, spec.n_inputs))
    assert out.shape == (3, spec.n_observables)
    with pytest.raises(BackendError, match="parameter-shift"):  # training needs another gradient
        model[0](torch.rand(3, spec.n_inputs)).sum().backward()


def test_bad_input_gives_clear_backend_errors():
    with pytest.raises(BackendError, match="fake_manila.*fake_quito|available"):
        get_backend("aer:fake_nowhere")
    with pytest.raises(BackendError) as err:
        get_backend("aer:fake_nowhere")
    assert "fake_manila" in str(err.value)  # the error lists what exists
    for bad in (0, -5, 1.5, True):
        with pytest.raises(BackendError, match="shots"):
            get_backend("aer", shots=bad)
    with pytest.raises(BackendError, match="method"):
        get_backend("aer", method="mps_magic")
    with pytest.raises(BackendError, match="sampling"):
        get_backend("aer", shots=10, sampling="fast")
    big = random_spec(1, n_qubits=6)
    x, wt = _data(big, 1, 0)
    with pytest.raises(BackendError, match="6 qubits.*only 5"):
        get_backend("aer:fake_manila").expval(big, x, wt)
    for shots in (100, None):  # no autograd through Aer: refused when a gradient is needed
        layer = QuantumLayer(random_spec(1, n_qubits=2), backend="aer", shots=shots)
        with pytest.raises(BackendError, match="backprop.*parameter-shift"):
            layer(torch.rand(2, layer.n_inputs)).sum().backward()
    with pytest.raises(BackendError, match="counts need shots"):
        get_backend("aer").counts(big, x, wt)


def test_aer_call_leaves_native_engine_usable():
    # Aer runs single-threaded by default; the native engine still gives the same numbers after.
    spec = random_spec(9, n_qubits=3)
    x, wt = _data(spec, 8, 0)
    before = simulate(spec, x, wt)
    get_backend("aer").expval(spec, x, wt)
    assert np.allclose(simulate(spec, x, wt).numpy(), before.numpy())


@pytest.mark.parametrize("options", [
    {"device": "qiskit.aer", "noise_model": "fake_manila"},  # a name, resolved to its NoiseModel
    {"device": "qiskit.remote", "backend": "fake_manila", "optimization_level": 1,
     "seed_transpiler": 1},  # a name, resolved to the fake backend object
    {"device": "qiskit.remote", "backend": "FAKE_OBJECT"},  # the object itself passes through
])
def test_pennylane_qiskit_devices_with_noise_and_fake_backends(options):
    from qllm.hardware.fake_devices import fake_backend

    options = dict(options)
    device = options.pop("device")
    if options.get("backend") == "FAKE_OBJECT":
        options["backend"] = fake_backend("fake_manila")
    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CNOT", (0, 1)), Op("RX", (1,), (w(0),))))
    x = torch.tensor([[0.3], [1.2]], dtype=DT)
    wt = torch.tensor([0.4], dtype=DT)
    backend = get_backend(f"pennylane:{device}", shots=4000, **options)
    got = backend.expval(spec, x, wt)
    # calibrated noise and 4000 shots: within 0.15 of the ideal values
    assert (got - simulate(spec, x, wt)).abs().max() < 0.15
