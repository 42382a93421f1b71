"""Multimodal sequences: the digits_qa task against scikit-learn's labels, packing and its
errors, the modality embedding, the fusion mixers against a hand computation with the VQC on
PennyLane default.qubit, and a short training run with its cost report."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch

from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.data import load_task
from qllm.errors import ConfigError, InputError
from qllm.model import HybridTransformer
from qllm.multimodal import QA_VOCAB, pack_streams
from qllm.train import model_config_for, train

STREAMS = [{"name": "image", "kind": "features", "length": 3, "dim": 2},
           {"name": "text", "kind": "tokens", "length": 2, "vocab_size": 5}]


@pytest.fixture(scope="module")
def task():
    return load_task("digits_qa")


def test_digits_qa_answers_need_image_and_text(task):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.tensor(d.images, dtype=torch.float32).view(-1, 4, 2, 4, 2)
    patches = images.permute(0, 1, 3, 2, 4).reshape(len(d.target), 16, 4) / 16.0
    n = len(task.y_test)
    assert task.x_test.shape == (n, 20, 4) and task.seq_len == 20 and n == 2 * 359
    offsets = {"what is this ?": 0, "what comes after ?": 1, "what comes before ?": -1}
    seen = set()
    for i in range(0, n, 23):
        x = task.x_test[i]
        # the image stream is one of sklearn's digits: find it and read its true label
        match = (patches - x[:16]).abs().flatten(1).amax(1) < 1e-6
        label = int(d.target[match.nonzero()[0, 0]])
        question = " ".join(QA_VOCAB[int(t)] for t in x[16:, 0])
        assert int(task.y_test[i]) == (label + offsets[question]) % 10, question
        assert torch.all(x[16:, 1:] == 0)
        seen.add(question)
    assert seen == set(offsets)
    # neither stream alone answers: each image's two questions differ, so do their answers
    half = n // 2
    assert torch.equal(task.x_test[:half, :16], task.x_test[half:, :16])
    assert bool((task.y_test[:half] != task.y_test[half:]).all())


def test_pack_streams_and_its_errors():
    img = torch.rand(2, 3, 2)
    txt = torch.tensor([[1, 4], [0, 2]])
    x = pack_streams(STREAMS, {"image": img, "text": txt})
    assert x.shape == (2, 5, 2)
    assert torch.equal(x[:, :3], img) and torch.equal(x[:, 3:, 0].long(), txt)
    with pytest.raises(InputError, match="stream 'image'"):
        pack_streams(STREAMS, {"image": torch.rand(2, 4, 2), "text": txt})
    with pytest.raises(InputError, match="stream 'text'.*integer"):
        pack_streams(STREAMS, {"image": img, "text": txt.float()})
    with pytest.raises(InputError, match=r"stream 'text'.*\[0, 5\)"):
        pack_streams(STREAMS, {"image": img, "text": txt + 3})
    with pytest.raises(InputError, match="one tensor per stream"):
        pack_streams(STREAMS, {"image": img})
    with pytest.raises(InputError, match="batch sizes differ"):
        pack_streams(STREAMS, {"image": img, "text": txt[:1]})


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="input_dim=3 must equal"):
        ModelConfig(input_dim=3, streams=STREAMS)
    with pytest.raises(ConfigError, match=r"streams\[1\].*keys"):
        ModelConfig(input_dim=2, streams=[STREAMS[0], {**STREAMS[1], "dim": 2}])
    with pytest.raises(ConfigError, match="at least 2"):
        ModelConfig(input_dim=2, streams=[STREAMS[0]])
    with pytest.raises(ConfigError, match="streams"):
        HybridTransformer(ModelConfig(input_dim=4, attn="qfusion"))


def test_model_checks_joined_sequence_and_uses_both_streams():
    torch.manual_seed(0)
    model = HybridTransformer(ModelConfig(input_dim=2, streams=STREAMS, block_size=5,
                                          n_classes=2, n_embd=8, n_head=2))
    x = pack_streams(STREAMS, {"image": torch.rand(2, 3, 2), "text": torch.tensor([[1, 4], [0, 2]])})
    out = model(x)
    assert out.shape == (2, 2)
    with pytest.raises(InputError, match="joined streams, 5 positions"):
        model(x[:, :4])
    bad = x.clone()
    bad[0, 3, 0] = 0.5
    with pytest.raises(InputError, match="stream 'text'"):
        model(bad)
    other = x.clone()
    other[:, 3:, 0] = torch.tensor([3.0, 3.0])
    assert not torch.allclose(model(other), out)  # the text changes the answer
    # the modality embedding is one learned vector per stream, added at its positions
    emb = model.embed
    h = emb(x)
    plain = torch.cat([emb.embeds[0](x[:, :3]), emb.embeds[1](x[:, 3:, 0].long())], 1)
    torch.testing.assert_close(h - plain, emb.modality.weight[[0, 0, 0, 1, 1]].expand(2, -1, -1))


@pytest.mark.parametrize("attn", ["qfusion", "fusion"])
def test_fusion_matches_hand_computation(attn):
    torch.manual_seed(1)
    cfg = ModelConfig(input_dim=2, streams=STREAMS, block_size=5, n_classes=2, n_embd=8,
                      n_head=2, attn=attn, quantum=QuantumConfig(n_qubits=3))
    mixer = HybridTransformer(cfg).blocks[0].mixer
    x = torch.randn(4, 5, 8)
    pooled = torch.cat([x[:, :3].mean(1), x[:, 3:].mean(1)], -1)
    angles = mixer.down(pooled)
    if attn == "qfusion":
        spec = mixer.vqc.spec
        dev = qml.device("default.qubit", wires=spec.n_qubits)
        qnode = qml.QNode(spec.to_pennylane(), dev, interface="torch")
        f = torch.stack(list(qnode(angles.double(), mixer.vqc.weights.double())), -1).float()
    else:
        f = torch.tanh(mixer.mix(angles))
    want = mixer.attn(x) + mixer.up(f)[:, None]
    torch.testing.assert_close(mixer(x), want, atol=1e-5, rtol=1e-5)


def test_multimodal_training_and_cost_report(task):
    cfg = ModelConfig(input_dim=4, n_embd=16, n_head=2, attn="qfusion")
    res = train(cfg, TrainConfig(task="digits_qa", epochs=1, max_steps=6, progress=False),
                task=task)
    assert np.isfinite(res["final"]["loss"]) and res["model"].config.streams == task.streams
    cost = res["cost"]
    assert cost["quantum"][0]["n_qubits"] == 4
    assert model_config_for(task, cfg).block_size == 20


def test_multimodal_preset_summarizes_seeds(tmp_path):
    import json

    from qllm.experiments.multimodal import run

    rows = run(tmp_path, progress=False, preset="tiny")
    assert {r["label"] for r in rows} >= {"classical", "fusion", "qfusion"}
    summary = json.loads((tmp_path / "multimodal" / "summary.json").read_text())
    q = next(r for r in summary["rows"] if r["label"] == "qfusion")
    assert q["quantum_params"] == 32 and q["params_vs_qfusion"] == 0.0 and q["seeds"] == [0]
    assert (tmp_path / "multimodal" / "summary.md").exists()
