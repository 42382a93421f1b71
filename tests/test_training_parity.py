"""End-to-end: training a hybrid model on PennyLane default.qubit follows the native engine's loss
curve (same seed, same batches, float64)."""

import copy

import torch

from qllm.config import ModelConfig, QuantumConfig
from qllm.data import load_task
from qllm.model import HybridTransformer


def _loss_curve(model, task, steps=20, batch=8):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(3)
    order = torch.randperm(len(task.x_train), generator=g)
    losses = []
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch]
        _, loss = model(task.x_train[idx].double(), task.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_pennylane_training_matches_native_engine():
    task = load_task("digits")
    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=4, n_classes=10, n_embd=16, n_layer=1, ffn="quantum",
                      attn="quantum", n_head=2, quantum=QuantumConfig(n_qubits=3, n_layers=1))
    native = HybridTransformer(cfg).double()
    twin = copy.deepcopy(native).set_backend("pennylane:default.qubit", diff_method="backprop")
    assert all(layer.backend.name == "pennylane:default.qubit" for layer in twin.quantum_layers())
    a = _loss_curve(native, task)
    b = _loss_curve(twin, task)
    assert a[-1] < a[0]  # it trains
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), atol=1e-4, rtol=0)
