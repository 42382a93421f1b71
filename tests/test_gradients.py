"""Parameter-shift and SPSA (qllm.backends.gradients) against autograd of the native engine, the circuit
counting formula, and QuantumLayer's gradient option."""

from __future__ import annotations

import math

import pytest
import torch

from qllm.backends import get_backend
from qllm.backends.gradients import CircuitGradient, gradient_circuits, shift_rule
from qllm.engine import simulate
from qllm.errors import BackendError, ConfigError
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, const, inp, w
from tests.random_specs import random_spec

DT = torch.float64


def _data(spec, batch, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, spec.n_inputs, generator=g, dtype=DT) * 2 - 1) * math.pi
    wt = torch.rand(spec.n_weights, generator=g, dtype=DT) * 2 * math.pi
    cot = torch.randn(batch, spec.n_observables, generator=g, dtype=DT)  # upstream gradient
    return x.requires_grad_(), wt.requires_grad_(), cot


def _grads(fn, x, wt, cot):
    x.grad = wt.grad = None
    out = fn(x, wt)
    if not out.requires_grad:  # a circuit of constants only
        return out, torch.zeros_like(x), torch.zeros_like(wt)
    (out * cot).sum().backward()
    gx = torch.zeros_like(x) if x.grad is None else x.grad.clone()
    gw = torch.zeros_like(wt) if wt.grad is None else wt.grad.clone()
    return out.detach(), gx, gw


def test_parameter_shift_matches_autograd_on_100_random_specs():
    worst = 0.0
    for seed in range(100):
        spec = random_spec(seed, max_qubits=4)
        x, wt, cot = _data(spec, 3, seed)
        ref, rx, rw = _grads(lambda a, b, s=spec: simulate(s, a, b), x, wt, cot)
        backend = get_backend("torch")
        out, gx, gw = _grads(lambda a, b, s=spec, k=backend: CircuitGradient()(s, k, a, b), x, wt, cot)
        worst = max(worst, (out - ref).abs().max().item(), (gx - rx).abs().max().item(),
                    (gw - rw).abs().max().item())
        # every executed circuit is counted: forward + the documented backward formula
        expected = 3 + gradient_circuits(spec, "parameter-shift", 3)
        assert backend.stats.circuits == expected, seed
    assert worst < 1e-8


def test_parameter_shift_through_exact_aer_in_one_job():
    for seed in (5, 41, 77):  # 41 has a CRY read from an input (a four-term rule)
        spec = random_spec(seed, max_qubits=4)
        x, wt, cot = _data(spec, 4, seed)
        _, rx, rw = _grads(lambda a, b, s=spec: simulate(s, a, b), x, wt, cot)
        backend = get_backend("aer")
        _, gx, gw = _grads(lambda a, b, s=spec, k=backend: CircuitGradient()(s, k, a, b), x, wt, cot)
        torch.testing.assert_close(gx, rx, atol=1e-8, rtol=0)
        torch.testing.assert_close(gw, rw, atol=1e-8, rtol=0)
        assert backend.stats.jobs == 2  # the forward, then every shifted circuit at once


def test_counting_formula_by_hand():
    # RY(w0) two-term, CRX(w1) four-term, RZ(2 * x0 * x1) two-term, one constant (never shifted)
    spec = CircuitSpec(2, (Op("RY", (0,), (w(0),)), Op("CRX", (0, 1), (w(1),)),
                           Op("RZ", (1,), (inp((0, 1), 2.0),)), Op("RX", (0,), (const(0.3),))))
    assert gradient_circuits(spec, "parameter-shift", 4) == 4 * (2 + 4 + 2)
    assert gradient_circuits(spec, "parameter-shift", 4, inputs_grad=False) == 4 * (2 + 4)
    assert gradient_circuits(spec, "spsa", 4, spsa_samples=3) == 4 * 2 * 3
    assert gradient_circuits(spec, "parameter-shift", 4, settings=2) == 2 * 4 * 8
    backend = get_backend("torch")
    x, wt, cot = _data(spec, 4, 0)
    wt = wt.detach().requires_grad_(True)
    (CircuitGradient()(spec, backend, x.detach(), wt) * cot).sum().backward()  # weights only
    assert backend.stats.circuits == 4 + 4 * 6 and backend.stats.jobs == 2


def test_shift_rules_come_from_gate_frequencies():
    assert len(shift_rule((1.0,))) == 2
    assert len(shift_rule((0.5, 1.0))) == 4
    # the two-term rule is the textbook one: 1/2 [f(a + pi/2) - f(a - pi/2)]
    flat = [v for term in sorted(shift_rule((1.0,))) for v in term]
    assert flat == pytest.approx([-0.5, -math.pi / 2, 0.5, math.pi / 2])


def test_spsa_is_unbiased_within_5_sigma_over_seeds():
    spec = random_spec(12, n_qubits=3)
    x, wt, cot = _data(spec, 2, 3)
    _, rx, rw = _grads(lambda a, b, s=spec: simulate(s, a, b), x, wt, cot)
    estimates = []
    for seed in range(8):  # 8 seeds x 100 directions per sample
        grad = CircuitGradient("spsa", spsa_samples=100, seed=seed)
        _, gx, gw = _grads(lambda a, b, g=grad: g(spec, get_backend("torch"), a, b), x, wt, cot)
        estimates.append(torch.cat([gx.flatten(), gw]))
    est = torch.stack(estimates)  # each row: the mean of 100 draws
    truth = torch.cat([rx.flatten(), rw])
    sigma = est.std(0) / math.sqrt(len(est))
    z = (est.mean(0) - truth) / sigma.clamp_min(1e-12)
    assert z.abs().max() < 5, z
    assert (est.std(0) > 0).any()  # it really is stochastic


def test_spsa_counts_and_seed_reproducibility():
    spec = random_spec(12, n_qubits=3)
    x, wt, cot = _data(spec, 5, 0)
    results = []
    for seed in (1, 1, 2):
        backend = get_backend("torch")
        grad = CircuitGradient("spsa", spsa_samples=3, seed=seed)
        _, gx, gw = _grads(lambda a, b, g=grad, k=backend: g(spec, k, a, b), x, wt, cot)
        assert backend.stats.circuits == 5 + 5 * 2 * 3 and backend.stats.jobs == 2
        results.append(torch.cat([gx.flatten(), gw]))
    assert results[0].abs().max() > 0
    assert torch.equal(results[0], results[1]) and not torch.equal(results[0], results[2])


def test_parameter_shift_with_native_shots_is_close_within_noise():
    spec = random_spec(21, n_qubits=3)
    x, wt, cot = _data(spec, 2, 1)
    cot = torch.ones_like(cot)
    _, rx, rw = _grads(lambda a, b, s=spec: simulate(s, a, b), x, wt, cot)
    shots = 20000
    backend = get_backend("torch", shots=shots, seed=3)
    _, gx, gw = _grads(lambda a, b, s=spec, k=backend: CircuitGradient()(s, k, a, b), x, wt, cot)
    # each shifted term has |c| <= 1/2 and variance <= 1/shots; a generous bound on sigma:
    n_terms = gradient_circuits(spec, "parameter-shift", 1) * spec.n_observables
    sigma = math.sqrt(n_terms * 0.25 / shots)
    assert (gx - rx).abs().max() < 5 * sigma and (gw - rw).abs().max() < 5 * sigma


def test_quantum_layer_trains_with_parameter_shift_on_a_fake_device():
    spec = random_spec(8, n_qubits=2)
    layer = QuantumLayer(spec, backend="aer:fake_manila", gradient="parameter-shift", shots=256,
                         seed=0)
    x = torch.rand(6, spec.n_inputs, requires_grad=True)
    layer(x).sum().backward()
    assert torch.isfinite(layer.weights.grad).all() and torch.isfinite(x.grad).all()
    stats = layer.backend.stats
    settings = len(layer.backend.setting_circuits(
        __import__("qllm.backends.gradients", fromlist=["angle_spec"]).angle_spec(spec)[0]))
    assert stats.jobs == 2
    assert stats.circuits == 6 * settings + gradient_circuits(spec, "parameter-shift", 6,
                                                              settings=settings)
    assert stats.shots == stats.circuits * 256


def test_quantum_layer_gradient_options_and_errors():
    spec = random_spec(2, n_qubits=2)
    with pytest.raises(ConfigError, match="parameter-shift"):
        QuantumLayer(spec, gradient="adjoint")
    with pytest.raises(ConfigError, match="spsa_samples"):
        QuantumLayer(spec, gradient="spsa", spsa_samples=0)
    with pytest.raises(ConfigError, match="spsa_epsilon"):
        QuantumLayer(spec, gradient="spsa", spsa_epsilon=0)
    shots_only = QuantumLayer(spec, backend="torch", shots=100)  # inference needs no gradient
    with pytest.raises(BackendError, match="backprop"):
        shots_only(torch.rand(2, spec.n_inputs)).sum().backward()
    layer = QuantumLayer(spec, backend="torch", shots=100, gradient="spsa", spsa_seed=1)
    assert "spsa" in repr(layer)
