"""The hybrid transformer: every sublayer kind (attention classical / quantum / qsann x FFN
classical / quantum) runs forward and backward on every task, with finite gradients reaching the
circuit weights; bad configs and inputs fail with named errors."""

from __future__ import annotations

import pytest
import torch

from qllm.config import ModelConfig
from qllm.data import TASKS, load_task
from qllm.errors import ConfigError, InputError, SpecError
from qllm.layers import FFNS, MIXERS
from qllm.model import HybridTransformer
from qllm.train import model_config_for

OPTIONS = {
    "digits": {},
    "meaning": {"n": 40},
    "parity": {"n": 40, "seq_len": 4},
    "copy": {"n": 40, "length": 2},
    "sort": {"n": 40, "length": 2},
    "stdlib_text": {"seq_len": 6, "max_chars": 2000},
    "digits_qa": {"questions": 1},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("to be or not to be, that is the question. " * 10)
    out = {name: load_task(name, **opts) for name, opts in OPTIONS.items()}
    out["text"] = load_task("text", path=path, seq_len=6)
    return out


def _config(task, attn, ffn, **over):
    base = ModelConfig(input_dim=1, n_embd=8, n_head=2, n_layer=1, attn=attn, ffn=ffn,
                       quantum={"n_qubits": 2, "n_layers": 1}, **over)
    return model_config_for(task, base)


def test_registries_cover_the_kinds():
    assert set(MIXERS) >= {"classical", "quantum", "qsann"} and set(FFNS) >= {"classical", "quantum"}


@pytest.mark.parametrize("attn", ["classical", "quantum", "qsann"])
@pytest.mark.parametrize("ffn", ["classical", "quantum"])
@pytest.mark.parametrize("task_name", sorted(TASKS))
def test_forward_backward_every_kind_on_every_task(tasks, task_name, attn, ffn):
    task = tasks[task_name]
    torch.manual_seed(0)
    model = HybridTransformer(_config(task, attn, ffn))
    x, y = task.x_train[:2], task.y_train[:2]
    logits, loss = model(x, y)
    if task.kind == "lm":
        assert logits.shape == (2, task.seq_len, task.vocab_size)
    else:
        assert logits.shape == (2, task.n_classes)
    assert torch.isfinite(logits).all() and torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name
    quantum = model.quantum_layers()
    assert bool(quantum) == (attn != "classical" or ffn != "classical")
    assert any(float(q.weights_grad.abs().sum()) > 0 for q in quantum) or not quantum
    assert model.num_params(quantum_only=True) == sum(q.weights.numel() for q in quantum)


def test_lm_attention_is_causal(tasks):
    """Changing a later token must not change earlier logits (every mixer)."""
    task = tasks["copy"]
    for attn in ("classical", "quantum", "qsann"):
        torch.manual_seed(0)
        model = HybridTransformer(_config(task, attn, "classical")).eval()
        x = task.x_train[:1].clone()
        a = model(x)
        x[0, -1] = (x[0, -1] + 1) % task.vocab_size
        b = model(x)
        assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6), attn
        assert not torch.allclose(a[:, -1], b[:, -1]), attn


@pytest.mark.parametrize("over,error,needle", [
    ({"attn": "transformer-xl"}, ConfigError, "attn"),
    ({"ffn": "switch"}, ConfigError, "ffn"),  # "moe" is a real FFN now
    ({"quantum": {"n_qubits": 0}}, ConfigError, "n_qubits"),
    ({"quantum": {"n_qubits": -3}}, ConfigError, "n_qubits"),
    ({"quantum": {"n_layers": 0}}, ConfigError, "n_layers"),
])
def test_bad_configs(over, error, needle):
    with pytest.raises(error, match=needle):
        ModelConfig(input_dim=4, **over)


def test_unknown_kind_registered_later_is_refused_until_registered():
    with pytest.raises(ConfigError, match="attn"):
        ModelConfig(input_dim=4, attn="mine")


def test_sequence_longer_than_block_size(tasks):
    task = tasks["parity"]
    model = HybridTransformer(_config(task, "classical", "quantum"))
    too_long = torch.zeros(1, task.seq_len + 1, dtype=torch.long)
    with pytest.raises(InputError, match="block_size"):
        model(too_long)
    features = HybridTransformer(ModelConfig(input_dim=3, block_size=4, n_embd=8, n_head=2,
                                             n_layer=1, ffn="quantum",
                                             quantum={"n_qubits": 2, "n_layers": 1}))
    with pytest.raises(InputError, match="block_size"):
        features(torch.rand(1, 5, 3))


def test_circuit_builder_rejects_bad_qubits():
    from qllm.circuits import build_circuit

    with pytest.raises(SpecError, match="n_qubits"):
        build_circuit(0, 1)
