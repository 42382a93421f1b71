"""CUDA paths (skipped without a GPU; run on a GPU machine with `pytest tests/test_cuda.py`)."""

import pytest
import torch
from qllm.circuits import build_circuit

from qllm import QuantumLayer
from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.data import load_task
from qllm.engine import simulate

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("encoding,ansatz", [("angle", "hardware_efficient"), ("iqp", "sim14"),
                                             ("dense_angle", "strongly_entangling")])
@pytest.mark.parametrize("strategy", ["fused", "gates"])
def test_engine_on_cuda_matches_cpu(encoding, ansatz, strategy):
    g = torch.Generator().manual_seed(0)
    spec = build_circuit(6, 2, encoding, ansatz, observables=None)
    x = torch.rand(33, spec.n_inputs, generator=g, dtype=torch.float64)
    w = torch.rand(spec.n_weights, generator=g, dtype=torch.float64)
    ref = simulate(spec, x, w, strategy)
    out = simulate(spec, x.cuda(), w.cuda(), strategy)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), ref, atol=1e-8, rtol=0)


@cuda
def test_layer_gradients_on_cuda_match_cpu():
    torch.manual_seed(0)
    spec = build_circuit(5, 2)
    layer = QuantumLayer(spec).double()
    x = torch.rand(16, 5, dtype=torch.float64, requires_grad=True)
    layer(x).pow(2).sum().backward()
    gx, gw = x.grad.clone(), layer.weights.grad.clone()
    layer.zero_grad()
    layer_cuda = layer.cuda()
    xc = x.detach().cuda().requires_grad_()
    layer_cuda(xc).pow(2).sum().backward()
    torch.testing.assert_close(xc.grad.cpu(), gx, atol=1e-10, rtol=0)
    torch.testing.assert_close(layer_cuda.weights.grad.cpu(), gw, atol=1e-10, rtol=0)


@cuda
def test_pennylane_backend_with_cuda_tensors():
    spec = build_circuit(3, 1)
    x = torch.rand(4, 3, dtype=torch.float64)
    w = torch.rand(spec.n_weights, dtype=torch.float64)
    ref = simulate(spec, x, w)
    layer = QuantumLayer(spec, backend="pennylane:default.qubit").double().cuda()
    with torch.no_grad():
        layer.weights.copy_(w)
    out = layer(x.cuda())
    torch.testing.assert_close(out.cpu(), ref, atol=1e-8, rtol=0)


@cuda
def test_hybrid_training_on_cuda():
    from qllm.train import train

    task = load_task("digits")
    task.x_train, task.y_train = task.x_train[:256], task.y_train[:256]
    res = train(ModelConfig(input_dim=4, ffn="quantum", attn="quantum",
                            quantum=QuantumConfig(n_qubits=4)),
                TrainConfig(epochs=1, device="cuda", progress=False), task=task)
    assert next(res["model"].parameters()).device.type == "cuda"
    assert res["final"]["loss"] == res["final"]["loss"]  # not NaN
