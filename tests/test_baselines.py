"""Classical baselines: the analytic parameter count against the built model, and parameter
matching within 10% for every kind of hybrid."""

import pytest

from qllm.config import ModelConfig, QuantumConfig
from qllm.errors import ConfigError
from qllm.experiments.baselines import (
    classical_param_count,
    param_count,
    param_matched,
    task_fields,
    width_matched,
)
from qllm.model import HybridTransformer

FEATURES = {"task": "classify", "block_size": 16, "input_dim": 4, "vocab_size": None,
            "n_classes": 10}
TOKENS_LM = {"task": "lm", "block_size": 32, "input_dim": None, "vocab_size": 57}


@pytest.mark.parametrize("fields", [FEATURES, TOKENS_LM])
@pytest.mark.parametrize("dims", [{"n_embd": 8, "n_head": 2, "n_layer": 1, "mlp_ratio": 1},
                                  {"n_embd": 20, "n_head": 4, "n_layer": 3, "mlp_ratio": 3},
                                  {"n_embd": 32, "n_head": 4, "n_layer": 2, "mlp_ratio": 4}])
def test_formula_matches_built_model(fields, dims):
    cfg = ModelConfig(input_dim=1, **dims).override(fields)
    built = sum(p.numel() for p in HybridTransformer(cfg).parameters())
    assert classical_param_count(cfg) == built == param_count(cfg)


def test_formula_refuses_hybrids():
    with pytest.raises(ConfigError, match="classical"):
        classical_param_count(ModelConfig(input_dim=4, ffn="quantum"))


@pytest.mark.parametrize("fields", [FEATURES, TOKENS_LM])
@pytest.mark.parametrize("extra", [{"ffn": "quantum"}, {"attn": "quantum"},
                                   {"attn": "quantum", "ffn": "quantum"},
                                   {"ffn": "quantum", "quantum": QuantumConfig(n_qubits=8)},
                                   {"attn": "qsann"}])
def test_param_matched_within_ten_percent(fields, extra):
    hybrid = ModelConfig(input_dim=4, **extra)
    cfg, info = param_matched(hybrid, fields)
    built = HybridTransformer(cfg.override(fields))
    n = sum(p.numel() for p in built.parameters())
    target = sum(p.numel() for p in HybridTransformer(hybrid.override(fields)).parameters())
    assert (info["params"], info["target_params"]) == (n, target)
    assert abs(n - target) <= 0.10 * target and info["within_tolerance"]
    assert cfg.attn == "classical" and cfg.ffn == "classical" and not built.quantum_layers()
    assert (cfg.n_layer, cfg.n_head) == (hybrid.n_layer, hybrid.n_head)


def test_param_matched_prefers_the_usual_mlp_ratio():
    cfg, _info = param_matched(ModelConfig(input_dim=4, ffn="quantum"), FEATURES)
    assert cfg.mlp_ratio == 4 and cfg.n_embd < 32


def test_param_matched_fails_loudly_when_out_of_range():
    with pytest.raises(ConfigError, match="within 1%"):
        param_matched(ModelConfig(input_dim=4, ffn="quantum"), FEATURES, tolerance=0.01,
                      max_embd=8)
    with pytest.raises(ConfigError, match="tolerance"):
        param_matched(ModelConfig(input_dim=4, ffn="quantum"), FEATURES, tolerance=1.5)


def test_width_matched_keeps_the_shape():
    hybrid = ModelConfig(input_dim=4, n_embd=24, n_head=3, mlp_ratio=2, attn="quantum",
                         ffn="quantum")
    w = width_matched(hybrid)
    assert (w.attn, w.ffn) == ("classical", "classical")
    assert (w.n_embd, w.n_head, w.n_layer, w.mlp_ratio) == (24, 3, 2, 2)


def test_task_fields_come_from_the_task():
    f = task_fields("meaning")
    assert f["task"] == "classify" and f["n_classes"] == 2 and f["vocab_size"] > 10
