"""The engine's product-state core (engine/product.py) and its hand-written backwards
(engine/fixed_matrix.py, engine/shift.py)
against PennyLane default.qubit and against plain autograd ("gates"), on seeded random circuits of
the quantum-FFN shape: values, input and weight gradients, complex128 and complex64, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qllm.backends import get_backend
from qllm.circuits import build_circuit
from qllm.engine import simulate
from qllm.engine.plan import make_plan
from qllm.errors import BackendError
from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, inp, w
from tests.engine_helpers import check_strategy, draw, value_and_grads
from tests.random_specs import product_spec

N_SPECS = 60
BATCH = 256


_draw, _value_and_grads = draw, value_and_grads


def _paths(spec) -> tuple[bool, bool]:
    """(the weight matrix used FixedMatrix, the prefix used DataVectors) for the last call."""
    cache = make_plan(spec).cache.get("core")
    return (False, False) if cache is None else (cache[2] is not None, cache[1] is not None)


@pytest.mark.parametrize("gate", [g for g in GATES.values() if g.n_params], ids=lambda g: g.name)
def test_shift_rule_flag_is_exactly_the_gates_whose_derivative_is_a_shift(gate):
    theta = torch.tensor([0.3, -1.1, 2.4][:gate.n_params], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: torch.view_as_real(gate.matrix(t).to(torch.complex128)),
                                             theta)  # [d, d, 2, P]
    holds = all(torch.allclose(torch.view_as_real(gate.matrix(theta + np.pi * torch.eye(
        gate.n_params, dtype=torch.float64)[k]).to(torch.complex128)) / 2, jac[..., k], atol=1e-12)
        for k in range(gate.n_params))
    assert gate.shift_rule == holds, gate.name


@pytest.mark.parametrize("seed", range(N_SPECS))
def test_random_product_circuit_matches_pennylane_and_autograd(seed):
    spec = product_spec(seed)
    x, wts, coef = _draw(spec, BATCH, seed)  # a batch large enough for "auto" to fuse
    check_strategy(spec, "auto", x, wts, coef, pennylane=seed % 4 == 0)


def test_random_product_circuits_exercise_both_shift_rule_paths_and_the_fallbacks():
    paths = []
    for seed in range(N_SPECS):
        spec = product_spec(seed)
        simulate(spec, *[t.detach() for t in _draw(spec, BATCH, seed)[:2]])
        paths.append(_paths(spec))
    fixed = sum(f for f, _ in paths)
    data = sum(d for f, d in paths if f)
    assert fixed >= N_SPECS // 5 and data >= N_SPECS // 10, paths  # the shift-rule paths
    assert fixed <= N_SPECS - 10, paths  # and the autograd fallbacks


@pytest.mark.parametrize("encoding,ansatz,reupload", [
    ("angle", "hardware_efficient", False), ("angle_rx", "strongly_entangling", False),
    ("dense_angle", "hardware_efficient", False), ("angle", "hardware_efficient", True),
    ("angle", "rx_ry_cnot", False), ("angle", "basic_entangler", False), ("iqp", "sim14", False)])
def test_library_circuits_match_autograd(encoding, ansatz, reupload):
    spec = build_circuit(6, 2, encoding, ansatz, reupload)
    x, wts, coef = _draw(spec, 16, 7)
    got = _value_and_grads(lambda a, b: simulate(spec, a, b, "auto"), x, wts, coef)
    ref = _value_and_grads(lambda a, b: simulate(spec, a, b, "gates"), x, wts, coef)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weight_matrix_takes_every_single_qubit_rotation_and_fixed_gate(dtype):
    """FixedMatrix builds U3, PhaseShift and Rot (by their Pauli-rotation decompositions, up to
    global phases), scaled angles, a weight read twice and fixed gates (H, SX, S, T) in its
    layers: same values and gradients as plain autograd gate by gate."""
    n = 3
    ops = [Op("RY", (q,), (inp(q),)) for q in range(n)]
    ops += [Op("U3", (0,), (w(0), w(1), w(2))), Op("PhaseShift", (1,), (w(3, -0.7),)),
            Op("Rot", (2,), (w(4), w(5), w(3))), Op("H", (1,), ()), Op("SX", (0,), ())]
    ops += [Op("CNOT", (0, 1), ()), Op("CNOT", (1, 2), ()), Op("T", (0,), ()),
            Op("S", (2,), ()), Op("RX", (0,), (w(6),)), Op("U3", (1,), (w(7), w(0), w(5, 0.5))),
            Op("CNOT", (2, 0), ())]
    spec = CircuitSpec(n, tuple(ops), ("ZII", "IZZ", "ZIZ"), n, 8, name="mixed layers")
    x, wts, coef = _draw(spec, 32, 3, dtype=dtype)
    got = _value_and_grads(lambda a, b: simulate(spec, a, b, "core"), x, wts, coef)
    assert _paths(spec)[0]
    ref = _value_and_grads(lambda a, b: simulate(spec, a, b, "gates"), x, wts, coef)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=tol, rtol=0)


@pytest.mark.parametrize("strategy", ["auto", "core"])
def test_weight_matrix_of_fixed_gates_only_needs_no_angles(strategy):
    """No weights, no inputs (found by tests/test_properties.py): the fixed layers read nothing."""
    spec = CircuitSpec(2, (Op("H", (0,), ()), Op("CNOT", (0, 1), ()), Op("H", (0,), ())),
                       ("ZI", "IZ"), 0, 0)
    x, wts = torch.zeros(3, 0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    torch.testing.assert_close(simulate(spec, x, wts, strategy), simulate(spec, x, wts, "gates"),
                               atol=1e-12, rtol=0)


def test_default_qffn_circuit_takes_the_shift_rule_paths():
    spec = build_circuit(6, 2)
    simulate(spec, torch.rand(8, 6), torch.rand(spec.n_weights))
    assert _paths(spec) == (True, True)


def test_chunked_core_equals_the_whole_batch():
    spec = build_circuit(5, 2)
    x, wts, coef = _draw(spec, 37, 3)
    whole = _value_and_grads(lambda a, b: get_backend("torch").expval(spec, a, b), x, wts, coef)
    chunked = _value_and_grads(lambda a, b: get_backend("torch", chunk_size=8).expval(spec, a, b),
                               x, wts, coef)
    for a, b in zip(chunked, whole):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_second_derivatives_need_a_plain_autograd_strategy():
    spec = build_circuit(6, 2)
    x, wts, _ = _draw(spec, BATCH, 0)
    for strategy in ("core", "kron"):  # hand-written backwards
        with pytest.raises(BackendError,
                           match="first derivatives only.*strategy='fused' or 'gates'"):
            torch.autograd.grad(simulate(spec, x, wts, strategy).sum(), wts, create_graph=True)
    (gw,) = torch.autograd.grad(simulate(spec, x, wts, "fused").sum(), wts, create_graph=True)
    (hw,) = torch.autograd.grad(gw.sum(), wts)
    assert torch.isfinite(hw).all()


def test_weight_gradients_without_input_gradients_match_autograd():
    # inputs that need no gradient take the plain prefix (no shifted vectors)
    spec = build_circuit(6, 2)
    x, wts, coef = _draw(spec, BATCH, 5)
    x = x.detach()
    (got,) = torch.autograd.grad((simulate(spec, x, wts, "auto") * coef).sum(), wts)
    (ref,) = torch.autograd.grad((simulate(spec, x, wts, "gates") * coef).sum(), wts)
    torch.testing.assert_close(got, ref, atol=1e-10, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(simulate(spec, x, wts, "auto"), simulate(spec, x, wts, "gates"),
                                   atol=1e-12, rtol=0)


@pytest.mark.parametrize("n", [8, 10])
def test_forced_core_matches_autograd_up_to_its_largest_size(n):
    spec = build_circuit(n, 2, "angle_rx", "strongly_entangling")
    x, wts, coef = _draw(spec, 32, n)
    got = _value_and_grads(lambda a, b: simulate(spec, a, b, "core"), x, wts, coef)
    ref = _value_and_grads(lambda a, b: simulate(spec, a, b, "gates"), x, wts, coef)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    assert _paths(spec) == (True, True)


def test_forced_core_refuses_other_shapes():
    spec = build_circuit(3, 1, observables=("XII",))
    with pytest.raises(BackendError, match="strategy 'core'.*product-state core's shape"):
        simulate(spec, torch.rand(4, 3), torch.rand(spec.n_weights), "core")


@pytest.mark.parametrize("seed", range(0, N_SPECS, 3))
def test_stacked_circuits_match_one_by_one(seed):
    from qllm.engine import simulate_stacked

    spec = product_spec(seed)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(3, BATCH, spec.n_inputs, generator=g, dtype=torch.float64) * 6).requires_grad_()
    wts = (torch.rand(3, spec.n_weights, generator=g, dtype=torch.float64) * 6).requires_grad_()
    coef = torch.randn(3, BATCH, spec.n_observables, generator=g, dtype=torch.float64)
    got = _value_and_grads(lambda a, b: simulate_stacked(spec, a, b), x, wts, coef)
    ref = _value_and_grads(lambda a, b: torch.stack([simulate(spec, a[h], b[h], "gates")
                                                     for h in range(3)]), x, wts, coef)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
