"""Determinism: one seed fixes everything qllm draws, and no qllm call moves the caller's RNG.

- the same seed gives a bit-identical 200-step loss curve across 3 runs (CPU, tiny model with
  dropout and SPSA gradients); another seed gives another curve;
- train() leaves torch's, numpy's and Python's global RNG state exactly as it found it;
- a shot-based model's counts follow the training seed (its sampler is reseeded by train());
- QuantumLayer construction draws its initial weights from torch's global RNG, as nn.Linear
  does: torch.manual_seed fixes them (documented behaviour, not a leak).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from qllm.circuits import build_circuit
from qllm.config import ModelConfig, TrainConfig
from qllm.layer_rng import rng_states, seed_layers
from qllm.quantum_layer import QuantumLayer
from qllm.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1, ffn="quantum", dropout=0.1,
                    quantum={"n_qubits": 2, "n_layers": 1, "gradient": "spsa"})


def _cfg(seed: int, steps: int = 200) -> TrainConfig:
    return TrainConfig(task="parity", task_options={"n": 400, "seq_len": 4}, batch_size=8,
                       epochs=100, max_steps=steps, eval_every=100, seed=seed, progress=False)


def test_same_seed_bit_identical_200_step_curves():
    curves = [train(MODEL, _cfg(seed=3))["losses"] for _ in range(3)]
    assert len(curves[0]) == 200
    assert curves[0] == curves[1] == curves[2]
    assert train(MODEL, _cfg(seed=4, steps=20))["losses"] != curves[0][:20]


def test_train_leaves_the_callers_global_rng_alone(tmp_path):
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    train(MODEL, _cfg(seed=0, steps=6), out_dir=tmp_path)
    train(MODEL, _cfg(seed=0, steps=6), out_dir=tmp_path, resume=True)  # resume sets RNG states
    assert torch.equal(before[0], torch.get_rng_state())
    assert np.array_equal(before[1], np.random.get_state()[1])
    assert before[2] == random.getstate()


def test_shot_sampler_follows_the_training_seed():
    model = MODEL.override({"quantum.gradient": "parameter-shift",
                            "quantum.backend_options": {"shots": 32}, "attn": "classical"})
    runs = [train(model, _cfg(seed=s, steps=8))["losses"] for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_seed_layers_reaches_every_private_generator():
    layer = QuantumLayer(build_circuit(2, 1), "torch", gradient="spsa", shots=16)
    x = torch.rand(4, 2)
    layer(x)  # the sampler creates its generator on first use
    seed_layers(layer, 7)
    a = rng_states(layer)[""]
    assert set(a["backend"]["sampler"]) == {"cpu"} and set(a["gradient"]) == {"directions"}
    layer(x)
    seed_layers(layer, 7)
    b = rng_states(layer)[""]
    assert torch.equal(a["backend"]["sampler"]["cpu"], b["backend"]["sampler"]["cpu"])
    assert torch.equal(a["gradient"]["directions"], b["gradient"]["directions"])


def test_quantum_layer_init_uses_the_global_rng_like_nn_linear():
    spec = build_circuit(3, 2)
    torch.manual_seed(0)
    w1 = QuantumLayer(spec).weights.detach().clone()
    torch.manual_seed(0)
    w2 = QuantumLayer(spec).weights.detach().clone()
    assert torch.equal(w1, w2)
    assert not torch.equal(w1, QuantumLayer(spec).weights.detach())
