"""Evaluation under another backend, shots and seed leaves the model as it was: keyword arguments of
``qllm.train.evaluate`` and the ``model.using_backend`` context manager."""

from __future__ import annotations

import pytest
import torch

from qllm.config import ModelConfig, QuantumConfig
from qllm.data import load_task
from qllm.model import HybridTransformer
from qllm.train import evaluate


@pytest.fixture(scope="module")
def model_task():
    torch.manual_seed(0)
    task = load_task("parity", n=60, seq_len=4)
    cfg = ModelConfig(**task.model_fields(), n_embd=8, n_head=2, n_layer=1, ffn="quantum",
                      quantum=QuantumConfig(n_qubits=2, n_layers=1))
    return HybridTransformer(cfg), task


def state(model):
    return [(layer.backend, layer.gradient, layer.gradient_fn) for layer in model.quantum_layers()]


def test_shots_keyword_equals_switching_by_hand_and_restores(model_task):
    model, task = model_task
    before, exact = state(model), evaluate(model, task)
    sampled = evaluate(model, task, shots=16, seed=3)
    assert state(model) == before  # the very same backend objects, not rebuilt ones
    assert evaluate(model, task) == exact
    # the reference: switch by hand on a copy of the weights
    twin = HybridTransformer(model.config)
    twin.load_state_dict(model.state_dict())
    twin.set_backend("torch", shots=16, seed=3)
    assert evaluate(twin, task) == sampled
    assert sampled["loss"] != exact["loss"]  # 16 shots is not exact
    assert evaluate(model, task, shots=16, seed=3) == sampled  # seeded: reproducible


def test_backend_keyword_matches_pennylane_reference(model_task):
    model, task = model_task
    exact = evaluate(model, task)
    ref = evaluate(model, task, backend="pennylane:default.qubit")
    assert ref["loss"] == pytest.approx(exact["loss"], abs=1e-5)
    assert ref["accuracy"] == exact["accuracy"]
    assert {layer.backend.name for layer in model.quantum_layers()} == {"torch"}


def test_using_backend_switches_inside_and_restores(model_task):
    model, _ = model_task
    before = state(model)
    with model.using_backend("aer", shots=64, seed=1) as m:
        assert m is model
        assert {layer.backend.name for layer in model.quantum_layers()} == {"aer"}
    assert state(model) == before


def test_using_backend_restores_after_an_exception(model_task):
    model, task = model_task
    before = state(model)
    with pytest.raises(RuntimeError, match="boom"):
        with model.using_backend("aer", shots=64, gradient="parameter-shift"):
            assert {layer.gradient for layer in model.quantum_layers()} == {"parameter-shift"}
            raise RuntimeError("boom")
    assert state(model) == before
    # a bad backend name fails before anything changes, and nothing stays switched
    from qllm.errors import BackendError

    with pytest.raises(BackendError, match="nosuch"):
        evaluate(model, task, backend="nosuch")
    assert state(model) == before
