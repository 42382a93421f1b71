"""Native finite-shot sampling and noise channels (qllm.engine.sampling / qllm.engine.noise)
against PennyLane default.mixed, exact values, and seeds."""

from __future__ import annotations

import math

import pytest
import torch

from qllm.backends import get_backend
from qllm.engine import simulate, simulate_state
from qllm.engine.noise import NoiseSpec, simulate_density
from qllm.engine.sampling import measurement_groups
from qllm.errors import BackendError
from qllm.export import pauli_observable
from qllm.gates import gate
from tests.random_specs import random_spec
from tests.references import assert_shot_means_unbiased

DT = torch.float64


def _data(spec, batch, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, spec.n_inputs, generator=g, dtype=DT) * 2 - 1) * math.pi
    wt = torch.rand(spec.n_weights, generator=g, dtype=DT) * 2 * math.pi
    return x, wt


def mixed_reference(spec, x, wt, depolarizing=0.0, damping=0.0):
    """PennyLane default.mixed: the same gates, each followed by the channels on its qubits."""
    import pennylane as qml

    dev = qml.device("default.mixed", wires=spec.n_qubits)

    @qml.qnode(dev, interface="torch")
    def circuit(inputs, weights):
        for op in spec.ops:
            g = gate(op.gate)
            angles = spec.op_angles(op, inputs, weights)
            args = [angles[..., i] for i in range(g.n_params)]
            if op.gate == "RBS":
                args = [-2 * args[0]]
            getattr(qml, g.pennylane)(*args, wires=list(op.wires))
            for q in op.wires:
                if depolarizing:
                    qml.DepolarizingChannel(depolarizing, wires=q)
                if damping:
                    qml.AmplitudeDamping(damping, wires=q)
        return [qml.expval(pauli_observable(o)) for o in spec.observables]

    rows = [torch.stack([torch.as_tensor(r).reshape(()) for r in circuit(xi, wt)]) for xi in x]
    return torch.stack(rows).to(DT)


@pytest.mark.parametrize("noise", [
    {"depolarizing": 0.05},
    {"amplitude_damping": 0.1},
    {"depolarizing": 0.02, "amplitude_damping": 0.05},
])
def test_gate_noise_matches_pennylane_default_mixed(noise):
    for seed in range(6):
        spec = random_spec(200 + seed, max_qubits=3)
        x, wt = _data(spec, 2, seed)
        got = get_backend("torch", noise=noise).expval(spec, x, wt)
        ref = mixed_reference(spec, x, wt, noise.get("depolarizing", 0),
                              noise.get("amplitude_damping", 0))
        torch.testing.assert_close(got, ref, atol=1e-8, rtol=0)


def test_readout_flip_matches_analytic():
    spec = random_spec(31, n_qubits=3)
    x, wt = _data(spec, 3, 0)
    p = 0.07
    got = get_backend("torch", noise={"readout": p}).expval(spec, x, wt)
    # symmetric flips scale a Pauli string of weight k by (1 - 2p)^k
    weight = torch.tensor([sum(c != "I" for c in o) for o in spec.observables], dtype=DT)
    torch.testing.assert_close(got, simulate(spec, x, wt) * (1 - 2 * p) ** weight, atol=1e-10,
                               rtol=0)
    # (default.mixed's readout_prob raises a TypeError in PennyLane 0.45.1, so no second reference)


def test_density_matrix_without_noise_is_the_pure_state():
    spec = random_spec(44, n_qubits=3)
    x, wt = _data(spec, 2, 1)
    rho = simulate_density(spec, x, wt, NoiseSpec())
    psi = simulate_state(spec, x, wt).to(torch.complex128)
    torch.testing.assert_close(rho, psi[:, :, None] * psi[:, None, :].conj(), atol=1e-10, rtol=0)


def test_exact_noisy_values_backpropagate():
    spec = random_spec(12, n_qubits=3)
    x, wt = _data(spec, 2, 2)
    backend = get_backend("torch", noise={"depolarizing": 0.03, "amplitude_damping": 0.02})
    assert backend.supports_backprop
    wt = wt.requires_grad_()
    backend.expval(spec, x, wt).sum().backward()
    h = 1e-6
    for j in range(spec.n_weights):
        e = torch.zeros_like(wt)
        e[j] = h
        with torch.no_grad():
            fd = (backend.expval(spec, x, wt + e).sum() - backend.expval(spec, x, wt - e).sum())
        assert wt.grad[j].item() == pytest.approx(fd.item() / (2 * h), abs=1e-7)


def test_native_shots_are_unbiased_within_5_sigma_over_50_specs():
    shots = 1000
    backend = get_backend("torch", shots=shots, seed=3)
    assert not backend.supports_backprop
    specs = [random_spec(300 + seed, max_qubits=5) for seed in range(50)]
    assert_shot_means_unbiased(backend, shots,
                               [(spec, *_data(spec, 4, seed)) for seed, spec in enumerate(specs)])


def test_shots_with_noise_are_unbiased_around_the_exact_noisy_value():
    spec = random_spec(12, n_qubits=3)
    x, wt = _data(spec, 64, 4)
    noise = {"depolarizing": 0.02, "readout": 0.03}
    exact = get_backend("torch", noise=noise).expval(spec, x, wt)
    est = get_backend("torch", noise=noise, shots=500, seed=0).expval(spec, x, wt)
    sigma = ((1 - exact**2).clamp_min(1e-3) / 500).sqrt()
    assert ((est - exact).abs() < 5 * sigma).all()
    assert abs((est - exact).mean()) < 5 * sigma.pow(2).sum().sqrt() / est.numel()


def test_same_seed_same_samples_and_circuit_counting():
    spec = random_spec(12, n_qubits=3).with_observables(["ZZI", "IIZ", "XYI"])
    x, wt = _data(spec, 8, 0)
    a = get_backend("torch", shots=100, seed=9)
    b = get_backend("torch", shots=100, seed=9)
    c = get_backend("torch", shots=100, seed=10)
    ea, eb, ec = (k.expval(spec, x, wt) for k in (a, b, c))
    assert torch.equal(ea, eb) and not torch.equal(ea, ec)
    assert not torch.equal(ea, a.expval(spec, x, wt))  # the stream moves on between calls
    assert a.stats.as_dict() == {"circuits": 2 * 8 * 2, "shots": 2 * 8 * 2 * 100, "jobs": 2}


def test_measurement_groups_are_qubitwise_commuting():
    groups = measurement_groups(("ZI", "IZ", "XX", "XI", "ZZ", "YI"))
    assert groups == [("ZZ", [0, 1, 4]), ("XX", [2, 3]), ("YI", [5])]


def test_bad_noise_and_shots_options():
    with pytest.raises(BackendError, match="depolarizing"):
        get_backend("torch", noise={"depolarising": 0.1})
    with pytest.raises(BackendError, match="probability"):
        get_backend("torch", noise={"readout": 1.5})
    with pytest.raises(BackendError, match="noise must be"):
        get_backend("torch", noise="strong")
    for bad in (0, -1, 2.5):
        with pytest.raises(BackendError, match="shots"):
            get_backend("torch", shots=bad)
    big = random_spec(1, n_qubits=11)
    x, wt = _data(big, 1, 0)
    with pytest.raises(BackendError, match="density matrix"):
        get_backend("torch", noise={"depolarizing": 0.1}).expval(big, x, wt)


@pytest.mark.parametrize("outcomes", [8, 128])  # sequential binomials, then torch.multinomial
def test_sampled_counts_have_multinomial_mean_and_variance(outcomes):
    from qllm.engine.sampling import sample_frequencies

    g = torch.Generator().manual_seed(0)
    p = torch.rand(3, outcomes, generator=g, dtype=DT) ** 3
    p = p / p.sum(-1, keepdim=True)
    shots, draws = 200, 3000
    freq = sample_frequencies(p.repeat(draws, 1), shots, g).reshape(draws, 3, outcomes)
    counts = (freq * shots).round()
    assert (freq * shots - counts).abs().max() < 1e-9 and (counts.sum(-1) == shots).all()
    var = shots * p * (1 - p)
    z = (counts.mean(0) - shots * p) / (var / draws).sqrt().clamp_min(1e-12)
    assert z.abs().max() < 5
    big = var > 1  # cells with enough spread for a variance check
    ratio = counts.var(0)[big] / var[big]
    assert 0.85 < ratio.min() and ratio.max() < 1.15
