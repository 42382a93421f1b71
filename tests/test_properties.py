"""Property tests (hypothesis): whatever a caller passes, QuantumLayer and the backends return a
finite tensor of the documented shape ``[..., n_observables]`` in [-1, 1] and the input's dtype,
or raise a QllmError. Never NaN, never a raw torch/numpy exception.

Examples are tiny (1-3 qubits, up to 4 ops, up to 3 x 3 samples) so 1,000 run in seconds.
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qllm.backends import get_backend
from qllm.errors import QllmError
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, const, inp, w

ONE_QUBIT = ["RX", "RY", "RZ", "H", "X", "S", "PhaseShift"]
TWO_QUBIT = ["CNOT", "CZ", "RZZ", "CRX", "SWAP"]
FLOATS = st.one_of(
    st.floats(-10, 10, allow_nan=False, width=32),
    st.sampled_from([0.0, math.pi, -math.pi, 1e-30, 1e30, 1e300, math.nan, math.inf, -math.inf]),
)
DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float32, torch.float64,
                          torch.float16, torch.int64, torch.complex64])


@st.composite
def specs(draw):
    """Mostly valid tiny specs; a valid spec is what the layer tests (bad specs are SpecErrors,
    covered by test_validation_catalogue)."""
    n = draw(st.integers(1, 3))
    ops = []
    for _ in range(draw(st.integers(0, 4))):
        if n >= 2 and draw(st.booleans()):
            name = draw(st.sampled_from(TWO_QUBIT))
            a = draw(st.integers(0, n - 1))
            b = draw(st.integers(0, n - 2))
            wires = (a, b if b < a else b + 1)
        else:
            name = draw(st.sampled_from(ONE_QUBIT))
            wires = (draw(st.integers(0, n - 1)),)
        from qllm.gates import gate

        params = []
        for _ in range(gate(name).n_params):
            kind = draw(st.sampled_from(["input", "weight", "const", "product"]))
            scale = draw(st.sampled_from([1.0, 0.5, 2.0, -1.0]))
            if kind == "input":
                params.append(inp(draw(st.integers(0, 2)), scale))
            elif kind == "product":
                params.append(inp((draw(st.integers(0, 2)), draw(st.integers(0, 2))), scale))
            elif kind == "weight":
                params.append(w(draw(st.integers(0, 3)), scale))
            else:
                params.append(const(draw(st.floats(-4, 4))))
        ops.append(Op(name, wires, tuple(params)))
    obs = draw(st.one_of(st.none(), st.lists(
        st.text(alphabet="IXYZ", min_size=n, max_size=n), min_size=1, max_size=3)))
    return CircuitSpec(n, tuple(ops), obs)


@st.composite
def calls(draw):
    spec = draw(specs())
    lead = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=2)))
    width = spec.n_inputs + draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
    dtype = draw(DTYPES)
    values = draw(st.lists(FLOATS, min_size=1, max_size=4))
    numel = math.prod(lead) * max(width, 0)
    data = [values[i % len(values)] for i in range(numel)]
    if dtype.is_floating_point or dtype.is_complex:
        x = torch.tensor(data, dtype=torch.float64).to(dtype).reshape(*lead, max(width, 0))
    else:
        x = torch.tensor([0 if not math.isfinite(v) else int(max(-1e6, min(1e6, v)))
                          for v in data], dtype=dtype).reshape(*lead, max(width, 0))
    return spec, x


def _check(layer: QuantumLayer, x: torch.Tensor) -> None:
    try:
        out = layer(x)
    except QllmError:
        return
    assert x.dtype in (torch.float32, torch.float64)
    assert out.shape == (*x.shape[:-1], layer.spec.n_observables)
    assert out.dtype == x.dtype
    assert bool(torch.isfinite(out).all()), (layer.spec, x, out)
    assert bool((out.abs() <= 1 + 1e-4).all())
    if out.numel() and out.requires_grad:  # the gradient is finite too
        out.sum().backward()
        assert bool(torch.isfinite(layer.weights.grad).all())


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls(), st.sampled_from(["auto", "fused", "gates"]))
def test_torch_backend_finite_or_qllm_error(call, strategy):
    spec, x = call
    torch.manual_seed(0)
    _check(QuantumLayer(spec, get_backend("torch", strategy=strategy)), x)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls())
def test_pennylane_backend_finite_or_qllm_error(call):
    spec, x = call
    torch.manual_seed(0)
    _check(QuantumLayer(spec, "pennylane:default.qubit"), x)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls(), st.integers(1, 64))
def test_torch_shots_finite_or_qllm_error(call, shots):
    spec, x = call
    torch.manual_seed(0)
    _check(QuantumLayer(spec, "torch", gradient="parameter-shift", shots=shots, seed=1), x)
