"""The Kronecker core (engine/kron.py) and the plan's dropped diagonals (plan.py) against plain
autograd ("gates") and PennyLane default.qubit: values, input and weight gradients, float64 and
float32, single and stacked circuits, on seeded random circuits of the quantum-FFN shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.engine.kron import kron_stages
from qllm.engine.plan import drop_unseen_diagonals, make_plan
from qllm.engine.product import has_core_shape, uses_kron_core
from qllm.errors import BackendError
from qllm.spec import CircuitSpec, Op, inp, w
from tests.engine_helpers import check_stacked, check_strategy, draw, value_and_grads
from tests.random_specs import product_spec
from tests.references import pennylane_expval

SEEDS = range(60)


_draw, _value_and_grads = draw, value_and_grads


def _kron_specs():
    out = []
    for seed in SEEDS:
        spec = product_spec(seed, n_qubits=[1, 2, 3, 5, 6, 8][seed % 6])
        plan = make_plan(spec)
        if has_core_shape(plan) and plan.segments and kron_stages(plan) is not None:
            out.append((seed, spec))
    return out


KRON_SPECS = _kron_specs()


def test_random_draws_reach_the_kronecker_core_in_its_variants():
    kinds = set()
    for _, spec in KRON_SPECS:
        stages, _ = kron_stages(make_plan(spec))
        kinds |= {("complex" if not s[2] else "real") for s in stages if s[0] == "layer"}
        kinds |= {"rotated" for s in stages if s[0] == "layer" and s[1].rotated}
        kinds |= {"multi-block" for s in stages if s[0] == "layer" and len(s[1].blocks) > 1}
    assert len(KRON_SPECS) >= 18, len(KRON_SPECS)
    assert kinds == {"complex", "real", "rotated", "multi-block"}, kinds


@pytest.mark.parametrize("seed,spec", KRON_SPECS, ids=[s.name for _, s in KRON_SPECS])
def test_kron_core_matches_autograd_and_pennylane(seed, spec):
    x, wts, coef = _draw(spec, 64, seed)
    check_strategy(spec, "kron", x, wts, coef, pennylane=seed % 5 == 0)


@pytest.mark.parametrize("seed,spec", KRON_SPECS[::3], ids=[s.name for _, s in KRON_SPECS[::3]])
def test_stacked_kron_core_matches_one_by_one(seed, spec):
    check_stacked(spec, "kron", seed, 32)


def test_kron_core_without_input_gradients_matches_autograd():
    spec = build_circuit(6, 3)
    x, wts, coef = _draw(spec, 16, 2)
    x = x.detach()
    (got,) = torch.autograd.grad((simulate(spec, x, wts, "kron") * coef).sum(), wts)
    (ref,) = torch.autograd.grad((simulate(spec, x, wts, "gates") * coef).sum(), wts)
    torch.testing.assert_close(got, ref, atol=1e-10, rtol=0)


def test_strategy_kron_refuses_other_shapes():
    with pytest.raises(BackendError, match="strategy 'kron'.*product-state core's shape"):
        simulate(build_circuit(3, 1, observables=("XII",)), torch.rand(4, 3), torch.rand(6),
                 "kron")
    spec = build_circuit(3, 1, "angle", "sim14")  # controlled rotations: not a layer or a gather
    with pytest.raises(BackendError, match="strategy 'kron'.*Kronecker core's shape"):
        simulate(spec, torch.rand(4, 3), torch.rand(spec.n_weights), "kron")


def test_auto_takes_the_kronecker_core_where_the_dense_matrix_is_large():
    assert uses_kron_core(make_plan(build_circuit(8, 2)), 1024)
    assert uses_kron_core(make_plan(build_circuit(10, 2)), 1024)
    assert not uses_kron_core(make_plan(build_circuit(4, 2)), 1024)  # 16 x 16: dense is cheap


def _ends_in_phases() -> CircuitSpec:
    # RZ(q0) meets only CNOT(0, 1) and CZ(1, 2) later (monomial): dropped; RZ(q2) is followed by
    # RY(q2): kept; RZZ(1, 2) after the last mixing gate on 1 and 2: dropped; RX(q3) is not
    # diagonal: kept.
    return CircuitSpec(4, (
        Op("RY", (0,), (inp(0),)), Op("RY", (1,), (inp(1),)), Op("RY", (2,), (inp(2),)),
        Op("RX", (3,), (inp(3),)), Op("RZ", (2,), (w(0),)), Op("RY", (2,), (w(1),)),
        Op("RZ", (0,), (w(2),)), Op("CNOT", (0, 1)), Op("CZ", (1, 2)),
        Op("RZZ", (1, 2), (w(3),)), Op("RX", (3,), (w(4),))),
        ("ZZII", "IZIZ", "ZIZZ"), 4, 5, name="ends_in_phases")


def test_dropped_diagonals_are_exactly_those_no_mixing_gate_sees():
    spec = _ends_in_phases()
    kept = drop_unseen_diagonals(spec.ops, spec.observables)
    assert [op for op in spec.ops if op not in kept] == [spec.ops[6], spec.ops[8], spec.ops[9]]
    assert drop_unseen_diagonals(spec.ops, ("XIII",)) == list(spec.ops)  # X readout: keep all


@pytest.mark.parametrize("strategy", ["auto", "gates", "fused"])
def test_dropped_diagonals_leave_values_and_gradients_unchanged(strategy):
    spec = _ends_in_phases()
    x, wts, coef = _draw(spec, 4, 11)
    got = _value_and_grads(lambda a, b: simulate(spec, a, b, strategy), x, wts, coef)
    pl = _value_and_grads(lambda a, b: pennylane_expval(spec, a, b), x, wts, coef)
    for a, b in zip(got, pl):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-10)


def test_a_circuit_whose_every_gate_is_dropped_still_has_zero_gradients():
    # RZ encodings and a CZ: phases only, so Z readouts are constant; backward must still work
    spec = CircuitSpec(2, (Op("RZ", (0,), (inp(0),)), Op("RZ", (1,), (w(0),)), Op("CZ", (0, 1))),
                       ("ZI", "ZZ"), 1, 1, name="phases_only")
    x, wts, coef = _draw(spec, 3, 4)
    got = _value_and_grads(lambda a, b: simulate(spec, a, b), x, wts, coef)
    pl = _value_and_grads(lambda a, b: pennylane_expval(spec, a, b), x, wts, coef)
    for a, b in zip(got, pl):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)
