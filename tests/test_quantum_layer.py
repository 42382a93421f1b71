"""QuantumLayer: shapes and dtypes, batching equals a per-sample loop, gradcheck in float64, and
clear errors (naming the argument) for bad input, names and memory requests."""

from __future__ import annotations

import time

import pytest
import torch

from qllm import QuantumLayer
from qllm.circuits import build_circuit
from qllm.errors import BackendError, ConfigError, InputError, InputTypeError, MemoryBudgetError
from tests.random_specs import all_gates_spec


@pytest.fixture
def layer():
    return QuantumLayer(build_circuit(4, 2))


def test_any_leading_shape_and_dtype_follows_input(layer):
    out = layer(torch.rand(2, 5, 4))
    assert out.shape == (2, 5, 4) and out.dtype == torch.float32
    assert float(out.detach().abs().max()) <= 1 + 1e-6
    out64 = layer.double()(torch.rand(3, 4, dtype=torch.float64))
    assert out64.dtype == torch.float64 and out64.shape == (3, 4)
    assert layer(torch.rand(4, dtype=torch.float64)).shape == (4,)


@pytest.mark.parametrize("batch", [1, 2, 7, 64])
def test_batch_equals_per_sample_loop(batch):
    layer = QuantumLayer(all_gates_spec(3, n_qubits=4)).double()
    x = torch.rand(batch, layer.n_inputs, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(batch)) * 6
    together = layer(x)
    alone = torch.stack([layer(x[b]) for b in range(batch)])
    torch.testing.assert_close(together, alone, atol=1e-12, rtol=0)


@pytest.mark.parametrize("strategy", ["fused", "gates"])
def test_gradcheck_float64(strategy):
    layer = QuantumLayer(all_gates_spec(11, n_qubits=3), strategy=strategy).double()
    x = torch.rand(3, layer.n_inputs, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-7)
    # and the weights: gradcheck a function of them
    wts = layer.weights.detach().clone().requires_grad_(True)

    def of_weights(w):
        return layer.backend.expval(layer.spec, x.detach(), w)

    assert torch.autograd.gradcheck(of_weights, (wts,), eps=1e-6, atol=1e-7)


def test_weights_get_gradients(layer):
    layer(torch.rand(8, 4)).sum().backward()
    assert layer.weights.grad is not None and layer.weights.grad.abs().sum() > 0


@pytest.mark.parametrize("x, err, match", [
    (torch.rand(2, 3), InputError, r"x must have shape \[\.\.\., 4\], got \(2, 3\)"),
    (torch.tensor([[0.1, float("nan"), 0.0, 0.0]]), InputError, "x contains NaN or inf"),
    (torch.tensor([[0.1, float("inf"), 0.0, 0.0]]), InputError, "x contains NaN or inf"),
    (torch.ones(2, 4, dtype=torch.int64), InputTypeError, "x must be a float tensor"),
    (torch.ones(2, 4, dtype=torch.float16), InputTypeError, "x must be float32 or float64"),
    ([[0.1, 0.2, 0.3, 0.4]], InputTypeError, "x must be a torch.Tensor, got list"),
    (torch.ones(2, 4, dtype=torch.complex64), InputTypeError, "x must be a float tensor"),
])
def test_bad_input_names_the_argument(layer, x, err, match):
    with pytest.raises(err, match=match):
        layer(x)


def test_nan_weights_are_refused(layer):
    with torch.no_grad():
        layer.weights[0] = float("nan")
    with pytest.raises(InputError, match="weights contains NaN or inf"):
        layer(torch.rand(2, 4))


def test_bad_names_fail_with_the_allowed_values():
    spec = build_circuit(2, 1)
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'; allowed: 'torch'"):
        QuantumLayer(spec, backend="tensorflow")
    with pytest.raises(BackendError, match=r"strategy 'fast' is not one of \('auto'"):
        QuantumLayer(spec, strategy="fast")
    with pytest.raises(BackendError, match="bad options for backend 'torch'"):
        QuantumLayer(spec, backend="torch", colour="red")
    with pytest.raises(ConfigError, match="init 'he' is not one of"):
        QuantumLayer(spec, init="he")
    with pytest.raises(ConfigError, match="spec must be a CircuitSpec"):
        QuantumLayer("angle")


def test_too_many_qubits_refused_before_allocating():
    layer = QuantumLayer(build_circuit(40, 1))
    t = time.perf_counter()
    with pytest.raises(MemoryBudgetError, match="simulating 40 qubits for a batch of 2 needs about"):
        layer(torch.rand(2, 40))
    assert time.perf_counter() - t < 2.0
    small = QuantumLayer(build_circuit(10, 1), memory_budget_gb=1e-4)
    with pytest.raises(MemoryBudgetError, match="Lower n_qubits, the batch size"):
        small(torch.rand(64, 10))


def test_inits():
    spec = build_circuit(3, 2)
    assert torch.all(QuantumLayer(spec, init="zeros").weights == 0)
    u = QuantumLayer(spec, init="uniform").weights.detach()
    assert float(u.min()) >= 0 and float(u.max()) < 2 * torch.pi
    assert float(QuantumLayer(spec, init="normal", init_scale=0.01).weights.abs().max()) < 0.1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    spec = all_gates_spec(5, n_qubits=5)
    layer = QuantumLayer(spec).double()
    x = torch.rand(16, layer.n_inputs, dtype=torch.float64)
    ref = layer(x)
    out = layer.cuda()(x.cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), ref, atol=1e-10, rtol=0)


def _loop_and_stacked(layers, x):
    """Values and gradients of stacked_forward and of the plain per-layer loop."""
    from qllm.quantum_layer import stacked_forward

    results = []
    for run in (stacked_forward, lambda ls, a: torch.stack([l(a[..., h, :]) for h, l in enumerate(ls)], -2)):
        xi = x.detach().requires_grad_()
        out = run(layers, xi)
        coef = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
        params = [xi] + [layer.weights for layer in layers]
        results.append((out, torch.autograd.grad((out * coef).sum(), params)))
    return results


@pytest.mark.parametrize("encoding,ansatz", [("angle", "hardware_efficient"),
                                             ("angle_rx", "strongly_entangling")])
def test_stacked_layers_equal_the_loop(encoding, ansatz):
    torch.manual_seed(0)
    layers = [QuantumLayer(build_circuit(4, 2, encoding, ansatz)).double() for _ in range(6)]
    x = torch.rand(8, 32, 6, 4, dtype=torch.float64)  # (B, T, H, n_inputs)
    (out, grads), (ref, ref_grads) = _loop_and_stacked(layers, x)
    assert out.shape == (8, 32, 6, 4)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    assert all(layer.backend.stats.circuits == 2 * 8 * 32 for layer in layers)  # both runs counted


def test_stacking_falls_back_to_the_loop_for_mixed_layers():
    from qllm.quantum_layer import stacked_forward

    torch.manual_seed(0)
    layers = [QuantumLayer(build_circuit(3, 1)).double(),
              QuantumLayer(build_circuit(3, 1), shots=100, seed=1, gradient="parameter-shift").double()]
    x = torch.rand(5, 2, 3, dtype=torch.float64)
    out = stacked_forward(layers, x)
    torch.testing.assert_close(out[:, 0], layers[0](x[:, 0]), atol=1e-12, rtol=0)
    assert out.shape == (5, 2, 3)
    with pytest.raises(InputError, match="NaN"):
        stacked_forward(layers[:1] * 2, torch.full((5, 2, 3), float("nan")))


def test_stacking_keeps_forward_hooks_firing():
    from qllm.quantum_layer import stacked_forward

    layers = [QuantumLayer(build_circuit(3, 1)) for _ in range(3)]
    calls = []
    layers[1].register_forward_pre_hook(lambda module, args: calls.append(args[0].shape))
    stacked_forward(layers, torch.rand(4, 5, 3, 3))
    assert calls == [torch.Size([4, 5, 3])]  # layer 1 ran as itself, on its own slice
