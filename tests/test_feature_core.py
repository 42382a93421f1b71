"""The Heisenberg core's feature route (engine/pauli_features.py, feature_core.py) against its
references: values and gradients on seeded random circuits against plain autograd ("gates") and
PennyLane default.qubit, single and stacked, float64 and float32; its hand-written backward
against finite differences; second derivatives against autograd; and where the cost model
sends a circuit."""

from __future__ import annotations

import math

import pytest
import torch

import qllm.engine.pauli as pauli
from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.engine.pauli_features import feature_program
from qllm.engine.plan import make_plan
from tests.engine_helpers import check_checkpointed, check_stacked, check_strategy, draw
from tests.test_pauli_core import SPECS

FEATURE_SPECS = [(s, spec) for s, spec in SPECS if feature_program(make_plan(spec)) is not None]


@pytest.fixture
def features_route(monkeypatch):
    """Every circuit the feature route takes runs through it (the cost model not asked)."""
    monkeypatch.setattr(pauli, "_feature_cost_us", lambda plan, batch: 0.0
                        if feature_program(plan) is not None else math.inf)
    make_plan.cache_clear()  # fresh plans: no decision cached from an earlier test
    yield
    make_plan.cache_clear()


def test_random_draws_cover_the_route():
    assert len(FEATURE_SPECS) >= 10, len(FEATURE_SPECS)
    n = {spec.n_qubits for _, spec in FEATURE_SPECS}
    assert len(n) >= 3, n
    tails = [s for s, spec in FEATURE_SPECS if pauli.split_prefix(make_plan(spec))[1]]
    assert len(tails) >= 5, "circuits whose weight-only tail the walk goes through"


@pytest.mark.parametrize("seed,spec", FEATURE_SPECS, ids=[s.name for _, s in FEATURE_SPECS])
def test_feature_route_matches_autograd_and_pennylane(features_route, seed, spec):
    x, wts, coef = draw(spec, 32, seed)
    check_strategy(spec, "pauli", x, wts, coef, pennylane=seed % 3 == 0)


@pytest.mark.parametrize("seed,spec", FEATURE_SPECS[::3], ids=[s.name for _, s in FEATURE_SPECS[::3]])
def test_stacked_feature_route_matches_one_by_one(features_route, seed, spec):
    check_stacked(spec, "pauli", seed, 16)


@pytest.mark.parametrize("index", [0, 5, -1])
def test_hand_written_backward_matches_finite_differences(features_route, index):
    spec = FEATURE_SPECS[index][1]
    x, wts, _ = draw(spec, 3, index)
    assert torch.autograd.gradcheck(lambda a, b: simulate(spec, a, b, "pauli"), (x, wts))


def test_second_derivatives_match_autograd(features_route):
    spec = build_circuit(4, 2)
    x, wts, _ = draw(spec, 8, 3)

    def hessian_rows(strategy):
        gx, gw = torch.autograd.grad(simulate(spec, x, wts, strategy).sum(), (x, wts),
                                     create_graph=True)
        return torch.autograd.grad(gx[0, 0] + gw[0], (x, wts))

    for a, b in zip(hessian_rows("pauli"), hessian_rows("gates")):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_checkpointed_calls_give_the_same_gradients(features_route):
    check_checkpointed(build_circuit(4, 2), "pauli", 9)


def test_input_gradients_alone_and_weight_gradients_alone(features_route):
    # each input of the node may or may not need a gradient: both halves of the backward
    spec = build_circuit(4, 2)
    x, wts, coef = draw(spec, 8, 4)
    ref = torch.autograd.grad((simulate(spec, x, wts, "gates") * coef).sum(), (x, wts))
    gx, = torch.autograd.grad((simulate(spec, x, wts.detach(), "pauli") * coef).sum(), (x,))
    gw, = torch.autograd.grad((simulate(spec, x.detach(), wts, "pauli") * coef).sum(), (wts,))
    torch.testing.assert_close(gx, ref[0], atol=1e-10, rtol=0)
    torch.testing.assert_close(gw, ref[1], atol=1e-10, rtol=0)


def test_the_cost_model_sends_small_circuits_here_and_declines_the_rest():
    make_plan.cache_clear()
    small = make_plan(build_circuit(4, 2))
    assert feature_program(small) is not None
    assert pauli._feature_cost_us(small, 6144) < pauli.pauli_program(small).cost_us(4, 6144)
    eight = make_plan(build_circuit(8, 2))  # 8 x 3^8 coefficients per token: the sparse one
    assert pauli._feature_cost_us(eight, 6144) > pauli.pauli_program(eight).cost_us(8, 6144)
    deep = make_plan(build_circuit(4, 3))  # the walk through the tail gives up
    assert feature_program(deep) is None
    two_angles = make_plan(build_circuit(4, 2, encoding="dense_angle"))  # two angles a qubit
    assert feature_program(two_angles) is None


@pytest.mark.parametrize("batch", [1, 2])
def test_a_token_or_two(features_route, batch):
    # one token leaves the batch axis of length 1, where a view of strided features can fail
    spec = build_circuit(4, 2)
    x, wts, coef = draw(spec, batch, 6)
    check_strategy(spec, "pauli", x, wts, coef, pennylane=True)
