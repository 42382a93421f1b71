"""Configs: round trips through dicts and JSON, dotted overrides, loud failures on unknown keys."""

from __future__ import annotations

import json

import pytest

from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.errors import ConfigError


def test_round_trip_dict_and_json(tmp_path):
    cfg = ModelConfig(vocab_size=12, task="lm", attn="qsann", ffn="quantum",
                      quantum=QuantumConfig(n_qubits=3, reupload=True,
                                            backend_options={"shots": 100}))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "m.json"
    cfg.to_json(path)
    assert ModelConfig.from_json(path) == cfg
    assert json.loads(path.read_text())["quantum"]["n_qubits"] == 3
    train = TrainConfig(task="copy", task_options={"n": 50}, seed=4)
    assert TrainConfig.from_dict(json.loads(train.to_json())) == train


def test_override_nested_and_types():
    cfg = ModelConfig(input_dim=4)
    new = cfg.override({"quantum.n_qubits": 6, "ffn": "quantum", "n_layer": 3})
    assert (new.quantum.n_qubits, new.ffn, new.n_layer) == (6, "quantum", 3)
    assert cfg.quantum.n_qubits == 4  # the original is unchanged
    assert isinstance(new.quantum, QuantumConfig)


@pytest.mark.parametrize("updates,needle", [
    ({"nope": 1}, "nope"),
    ({"quantum.nope": 1}, "nope"),
    ({"n_embd.x": 1}, "n_embd"),
    ({"quantum.n_qubits": -1}, "n_qubits"),
    ({"quantum.ansatz": "nope"}, "ansatz"),
    ({"quantum.gradient": "nope"}, "gradient"),
    ({"quantum.backend": "nope"}, "backend"),
    ({"quantum.backend_options": 3}, "backend_options"),
    ({"task": "nope"}, "task"),
    ({"vocab_size": 10}, "vocab_size"),  # both vocab_size and input_dim set
    ({"n_head": 3}, "n_head"),
    ({"dropout": -0.1}, "dropout"),
    ({"block_size": 0}, "block_size"),
    ({"n_classes": 1}, "n_classes"),
])
def test_bad_model_overrides_fail_loudly(updates, needle):
    with pytest.raises(ConfigError, match=needle):
        ModelConfig(input_dim=4).override(updates)


@pytest.mark.parametrize("field,value", [
    ("epochs", 0), ("batch_size", -1), ("lr", 0), ("lr", float("inf")), ("warmup_frac", 1.0),
    ("min_lr_frac", -0.1), ("weight_decay", float("nan")), ("grad_clip", -1), ("seed", -1),
    ("seed", 1.5), ("eval_every", 0), ("checkpoint_every", -1), ("max_steps", -5),
    ("task", "nope"), ("task_options", "path=x"), ("device", "tpu:0"), ("epochs", True),
])
def test_bad_train_fields(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        TrainConfig(**{field: value})


def test_lm_needs_tokens_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size"):
        ModelConfig(input_dim=4, task="lm")
    with pytest.raises(ConfigError, match="missing.json"):
        ModelConfig.from_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        ModelConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="dict"):
        ModelConfig.from_dict([("input_dim", 4)])


def test_quantum_config_builds_its_spec():
    spec = QuantumConfig(n_qubits=3, n_layers=2).build_spec()
    assert spec.n_qubits == 3 and spec.n_inputs == 3 and spec.n_observables == 3
    assert QuantumConfig(n_qubits=3).build_spec(("ZII",)).observables == ("ZII",)
