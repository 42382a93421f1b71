"""Shared helpers of the tests/test_hardware_*.py files: a tiny hybrid transformer on a chosen
backend, its native-engine twin, and their parameter gradients."""

from __future__ import annotations

import torch

from qllm.config import ModelConfig, QuantumConfig
from qllm.model import HybridTransformer


def tiny_config(backend: str = "torch", gradient: str = "backprop", n_qubits: int = 2, /,
                **backend_options) -> ModelConfig:
    """A 1-block classifier whose FFN is one 2-qubit circuit: few circuits per step.
    ``backend_options`` may hold a device option named ``backend`` (qiskit.remote)."""
    return ModelConfig(input_dim=3, n_classes=2, block_size=4, n_embd=4, n_head=1, n_layer=1,
                       ffn="quantum",
                       quantum=QuantumConfig(n_qubits=n_qubits, n_layers=1, backend=backend,
                                             gradient=gradient, backend_options=backend_options))


def model_pair(cfg: ModelConfig, seed: int = 0):
    """(native-engine model, model on ``cfg``'s backend) with identical weights, float64."""
    torch.manual_seed(seed)
    route = HybridTransformer(cfg).double()
    native_cfg = cfg.override({"quantum.backend": "torch", "quantum.backend_options": {},
                               "quantum.gradient": "backprop"})
    native = HybridTransformer(native_cfg).double()
    native.load_state_dict(route.state_dict())
    return native, route


def batch(n: int = 2, seq: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, seq, 3, generator=g, dtype=torch.float64),
            torch.randint(0, 2, (n,), generator=g))


def parameter_grads(model, x, y) -> dict[str, torch.Tensor]:
    """Gradients of the loss w.r.t. every parameter (the angle projection below the circuit
    trains through the circuit's input gradient)."""
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def max_grad_error(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)
