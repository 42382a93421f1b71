"""CUDA paths (skipped without a GPU; run on a GPU machine with `pytest tests/test_cuda.py`)."""

import pytest
import torch

from qllm import QuantumLayer
from qllm.circuits import build_circuit
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


@cuda
@pytest.mark.parametrize("strategy", ["auto", "fused", "gates"])
def test_cuda_graphs_match_eager_values_and_gradients(strategy):
    from qllm.backends import get_backend

    g = torch.Generator().manual_seed(1)
    spec = build_circuit(5, 2, "iqp", "sim14")
    graphed = get_backend("torch", cuda_graphs=True, strategy=strategy)
    for step in range(3):  # capture, then replays with new inputs each step
        x = torch.rand(64, spec.n_inputs, generator=g, dtype=torch.float64).cuda().requires_grad_()
        w = torch.rand(spec.n_weights, generator=g, dtype=torch.float64).cuda().requires_grad_()
        up = torch.rand(64, spec.n_observables, generator=g, dtype=torch.float64).cuda()
        ref = simulate(spec, x, w, strategy)
        ref_gx, ref_gw = torch.autograd.grad((ref * up).sum(), (x, w))
        out = graphed.expval(spec, x, w)
        gx, gw = torch.autograd.grad((out * up).sum(), (x, w))
        torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
        torch.testing.assert_close(gx, ref_gx, atol=1e-10, rtol=0)
        torch.testing.assert_close(gw, ref_gw, atol=1e-10, rtol=0)
    assert len(graphed.graphs.graphs) == 1


@cuda
def test_cuda_graphs_two_calls_before_backward_stay_correct():
    """The second call runs eagerly (the first one's activations are still needed)."""
    from qllm.backends import get_backend

    g = torch.Generator().manual_seed(2)
    spec = build_circuit(4, 2)
    graphed = get_backend("torch", cuda_graphs=True)
    w = torch.rand(spec.n_weights, generator=g).cuda().requires_grad_()
    xs = [torch.rand(32, 4, generator=g).cuda().requires_grad_() for _ in range(2)]
    graphed.expval(spec, xs[0], w).sum().backward()  # capture
    loss = graphed.expval(spec, xs[0], w).pow(2).sum() + graphed.expval(spec, xs[1], w).sum()
    gw = torch.autograd.grad(loss, w)[0]
    ref = simulate(spec, xs[0], w).pow(2).sum() + simulate(spec, xs[1], w).sum()
    torch.testing.assert_close(gw, torch.autograd.grad(ref, w)[0], atol=1e-5, rtol=1e-5)


@cuda
def test_cuda_graphs_stale_backward_is_an_error():
    from qllm.backends import get_backend

    spec = build_circuit(3, 1)
    graphed = get_backend("torch", cuda_graphs=True)
    w = torch.rand(spec.n_weights).cuda().requires_grad_()
    x = torch.rand(8, 3).cuda()
    graphed.expval(spec, x, w).sum().backward()
    first = graphed.expval(spec, x, w).sum()
    first.backward(retain_graph=True)
    graphed.expval(spec, x, w).sum().backward()
    with pytest.raises(RuntimeError, match="cuda_graphs=False"):
        first.backward()


@cuda
@pytest.mark.parametrize("graphs", [False, True])
def test_product_core_on_cuda_matches_cpu_autograd(graphs):
    from qllm.backends import get_backend
    from qllm.engine.plan import make_plan

    g = torch.Generator().manual_seed(2)
    spec = build_circuit(6, 2)  # the quantum FFN circuit: core, FixedMatrix and DataVectors
    backend = get_backend("torch", cuda_graphs=graphs)
    for _ in range(3):
        x = torch.rand(512, 6, generator=g, dtype=torch.float64, requires_grad=True)
        w = torch.rand(spec.n_weights, generator=g, dtype=torch.float64, requires_grad=True)
        up = torch.rand(512, spec.n_observables, generator=g, dtype=torch.float64)
        ref = simulate(spec, x, w, "gates")
        ref_g = torch.autograd.grad((ref * up).sum(), (x, w))
        xc, wc = (t.detach().cuda().requires_grad_() for t in (x, w))
        out = backend.expval(spec, xc, wc)
        got_g = torch.autograd.grad((out * up.cuda()).sum(), (xc, wc))
        torch.testing.assert_close(out.cpu(), ref, atol=1e-10, rtol=0)
        for a, b in zip(got_g, ref_g):
            torch.testing.assert_close(a.cpu(), b, atol=1e-10, rtol=0)
    head, shifts, stages = make_plan(spec).cache["core"]
    assert shifts is not None and stages is not None
