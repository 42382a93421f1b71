"""qllm.cost report: FLOPs against nanoGPT's formula, projections against hand-computed
values, the CostReport, and clear errors for bad input."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from qllm.circuits import build_circuit
from qllm.cost import (
    PROFILES,
    TARGETS,
    CostLedger,
    cost_report,
    count_flops,
    get_profile,
    logical_counts,
    shift_terms,
    shots_for_precision,
    transformer_flops_per_token,
    transpiled_counts,
)
from qllm.errors import ConfigError, SpecError
from qllm.quantum_layer import QuantumLayer


# -- profiles and projections ---------------------------------------------------------------
def test_shots_for_precision_bounds_standard_error():
    assert shots_for_precision(0.01) == 10_000 and shots_for_precision(0.05) == 400
    # worst case: a fair ±1 coin has variance 1; the mean of 400 shots has std 0.05
    rng = np.random.default_rng(0)
    means = rng.choice([-1.0, 1.0], size=(4000, shots_for_precision(0.05))).mean(1)
    assert abs(means.std() - 0.05) < 0.003
    with pytest.raises(ConfigError, match="eps"):
        shots_for_precision(0)


def test_profile_timing_by_hand():
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(3)
    qc.sx(0)
    qc.rz(0.3, 1)
    qc.cz(0, 1)
    qc.sx(2)
    qc.sx(1)
    heron, aria = get_profile("ibm_heron"), get_profile("ionq_aria")
    # parallel: sx(0) | cz | sx(1) on the critical path, rz virtual, sx(2) overlaps
    assert heron.circuit_seconds(qc) == pytest.approx(heron.t_1q * 2 + heron.t_2q)
    # serial: every gate one after another
    assert aria.circuit_seconds(qc) == pytest.approx(4 * aria.t_1q + aria.t_2q)
    shot = heron.shot_seconds(qc)
    assert shot == pytest.approx(heron.t_1q * 2 + heron.t_2q + heron.t_readout + heron.rep_delay)
    p = heron.project(10, 1000, 2, shot)
    assert p.qpu_seconds == pytest.approx(10 * 1000 * shot + 2 * heron.job_latency)
    assert p.price == pytest.approx(p.qpu_seconds * heron.price_per_second)
    q = aria.project(10, 1000, 2, 1e-3)
    assert q.price == pytest.approx(10 * aria.price_per_task + 10_000 * aria.price_per_shot)
    for prof in PROFILES.values():  # every number has a source
        assert prof.sources and all(s["url"].startswith("https://") for s in prof.sources)


# -- classical FLOPs ------------------------------------------------------------------------
class TinyGPTBlock(nn.Module):
    """nanoGPT's block shape without biases in the count: qkv, attention, projection, MLP."""

    def __init__(self, C, nh):
        super().__init__()
        self.nh = nh
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.proj(torch.relu(self.fc(x)))


def test_flops_match_nanogpt_formula():
    C, L, T, B = 32, 2, 12, 3
    model = nn.Sequential(*[TinyGPTBlock(C, 4) for _ in range(L)])
    n_matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    flops = count_flops(model, torch.rand(B, T, C))
    assert flops[""] / (B * T) == transformer_flops_per_token(n_matmul, L, C, T)
    assert flops["0"] == flops["1"] == flops[""] / 2


# -- the report -----------------------------------------------------------------------------
class Hybrid(nn.Module):
    """Two quantum sublayers of different widths around classical projections."""

    def __init__(self, backend="torch"):
        super().__init__()
        self.embed = nn.Linear(5, 8)
        self.ffn = nn.ModuleDict({"down": nn.Linear(8, 3), "up": nn.Linear(3, 8)})
        self.ffn_vqc = QuantumLayer(build_circuit(3, 2), backend=backend)
        self.mix_down = nn.Linear(8, 4)
        self.mix = QuantumLayer(build_circuit(4, 1, ansatz="rbs_pyramid"), backend=backend)

    def forward(self, x):  # (B, T, 5)
        h = self.embed(x)
        h = h + self.ffn["up"](self.ffn_vqc(self.ffn["down"](h)))
        return self.mix(self.mix_down(h)).sum(-1)  # (B, T)


def test_cost_report_counts_and_projection():
    torch.manual_seed(0)
    model = Hybrid()
    B, T, shots = 2, 6, 500
    r = cost_report(model, example_input=torch.rand(B, T, 5), shots=shots, target="ibm_manila",
                    gradient="parameter-shift", profile="ionq_aria", batch_size=4,
                    steps_per_epoch=3, epochs=2)
    by_name = {q.name: q for q in r.quantum}
    assert set(by_name) == {"ffn_vqc", "mix"}
    for name, q in by_name.items():
        spec = dict(model.named_modules())[name].spec
        assert q.circuits_per_token == 1 and q.inputs_trainable
        assert q.circuits_per_token_step == 1 + shift_terms(spec)
        assert q.logical == logical_counts(spec).to_dict()
        assert q.transpiled == transpiled_counts(spec, "ibm_manila").to_dict()
    aria = get_profile("ionq_aria")
    step_exec = sum(4 * T * q.circuits_per_token_step for q in r.quantum)
    seconds = sum(4 * T * q.circuits_per_token_step * shots * q.shot_seconds["ionq_aria"]
                  + 2 * aria.job_latency for q in r.quantum)  # fwd + shifted job per layer
    pr = r.projections["ionq_aria"]
    assert pr["per_step"]["executions"] == step_exec
    assert pr["per_step"]["qpu_seconds"] == pytest.approx(seconds)
    assert pr["per_run"]["qpu_seconds"] == pytest.approx(6 * seconds)
    assert pr["per_inference_token"]["executions"] == pytest.approx(2)  # one circuit per layer
    assert pr["per_inference_token"]["jobs"] == pytest.approx(2 / T)  # a job per layer per sequence
    text = str(r)
    assert "learn.microsoft.com" in text and "leaves out" in text and "ffn_vqc" in text
    assert json.loads(r.to_json())["quantum"][0]["n_qubits"] in (3, 4)


def test_cost_report_with_baseline_and_spsa_heron():
    model, base = Hybrid(), Hybrid()
    r = cost_report(model, example_input=torch.rand(1, 4, 5), shots=100, target=None,
                    gradient="spsa", n_spsa_samples=2, profile="ibm_heron,ionq_aria", baseline=base,
                    measure=True)
    assert all(q.circuits_per_token_step == 5 for q in r.quantum)
    total = next(c for c in r.classical if c.name == "total")
    assert total.baseline_params == sum(p.numel() for p in base.parameters())
    assert total.quantum_weights == model.ffn_vqc.spec.n_weights + model.mix.spec.n_weights
    assert set(r.projections) == {"ibm_heron", "ionq_aria"}  # "a,b" as the CLI passes it
    assert r.projections["ibm_heron"]["per_step"]["price_usd"] > 0
    assert r.measured["model"]["wall_seconds_fwd_bwd"] > 0


def test_cost_report_on_hybrid_transformer_config_input():
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    model = HybridTransformer(ModelConfig(vocab_size=11, n_classes=2, ffn="quantum",
                                          attn="quantum"))
    r = cost_report(model, seq_len=5, target="ionq_aria", profile=(), gradient="parameter-shift")
    assert r.quantum and all(q.circuits_per_token == 1 for q in r.quantum)
    assert len(r.quantum) == len(model.quantum_layers())
    # sublayers are the modules that own the circuits, past ModuleList containers
    names = [c.name for c in r.classical]
    assert names == ["blocks.0.mixer", "blocks.0.ffn", "blocks.1.mixer", "blocks.1.ffn", "total"]
    assert all(c.flops_per_token >= 0 for c in r.classical)
    assert r.classical[-1].quantum_weights == sum(q.n_weights for q in r.quantum)


def test_cost_report_on_classical_model():
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    cfg = ModelConfig(vocab_size=11, n_classes=2, n_embd=16, n_head=2, n_layer=2)
    model = HybridTransformer(cfg)
    r = cost_report(model, seq_len=8, profile="ibm_heron")
    assert r.quantum == [] and r.projections == {}
    total = r.classical[-1]
    assert total.params == sum(p.numel() for p in model.parameters())
    # nanoGPT's formula on the blocks: every Linear weight in a block, 4 L C T for attention;
    # the classification head runs once per sequence (on the pooled state), not per token
    blocks = sum(m.weight.numel() for m in model.blocks.modules() if isinstance(m, nn.Linear))
    head = model.head.weight.numel()
    assert total.flops_per_token == pytest.approx(
        transformer_flops_per_token(blocks, 2, 16, 8) + 2 * head / 8)
    assert "total" in str(r)


# -- errors ---------------------------------------------------------------------------------
def test_errors_name_the_allowed_values():
    spec = build_circuit(6, 1)
    with pytest.raises(ConfigError, match="ibm_manila"):
        transpiled_counts(spec, "ibm_nowhere")
    with pytest.raises(ConfigError, match="ionq_aria"):
        get_profile("dwave")
    with pytest.raises(SpecError, match=r"needs 6 qubits.*'ibm_manila'.*has 5"):
        transpiled_counts(spec, "ibm_manila")
    model = Hybrid()
    x = torch.rand(1, 3, 5)
    with pytest.raises(ConfigError, match="parameter-shift"):
        cost_report(model, example_input=x, gradient="finite-difference")
    with pytest.raises(ConfigError, match="ibm_torino"):
        cost_report(model, example_input=x, target="torino")
    with pytest.raises(ConfigError, match="ibm_heron"):
        cost_report(model, example_input=x, profile="heron")
    with pytest.raises(ConfigError, match="example_input"):
        cost_report(model, seq_len=4)
    with pytest.raises(ConfigError, match="no QuantumLayer"):
        CostLedger(nn.Linear(2, 2))
    assert set(TARGETS) >= {"ibm_torino", "ibm_manila", "ionq_aria"}
    assert math.isfinite(get_profile("ibm_heron").t_2q)
