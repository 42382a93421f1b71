"""Soft prompts on a frozen MiniLM: ``quantum_prompt`` (VQC-generated prompt vectors) against
peft's own prompt tuning (``prompt``). Budgets against peft's counter, features against a hand
concatenation and against peft's own forward, training / checkpoint / resume bit-identical, the
backbone untouched."""

from __future__ import annotations

import pytest
import torch

from qllm.pretrained import FinetuneConfig, build
from qllm.pretrained.backbones import mean_pool, weights_sha256
from qllm.pretrained.cost import parameter_counts
from qllm.pretrained.prompts import run_with_prompts
from qllm.rng import preserve_global_rng, seed_global
from tests.pretrained_helpers import finetune_and_resume

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ("quantum_prompt", "prompt")
TEXTS = ["a chef bakes bread", "the engineer runs code today"]


def _by_hand(minilm, prompts, ids, mask):
    """Reference: the frozen backbone on [prompts; word embeddings], text positions pooled."""
    k = prompts.shape[0]
    words = minilm.model.embeddings.word_embeddings(ids)
    embeds = torch.cat([prompts.expand(ids.shape[0], k, -1), words], dim=1)
    full_mask = torch.cat([torch.ones(ids.shape[0], k, dtype=mask.dtype), mask], dim=1)
    hidden = minilm.model(inputs_embeds=embeds, attention_mask=full_mask).last_hidden_state
    return mean_pool(hidden[:, k:], mask)


def test_budgets_match_peft_counter(minilm):
    torch.manual_seed(0)
    quantum, classical = build(minilm, "quantum_prompt", 7), build(minilm, "prompt", 7)
    peft_trainable, _ = classical.encoder.get_nb_trainable_parameters()
    k, head = 4, 384 * 7 + 7  # rank=4 prompt tokens, n_qubits=4, n_layers=2 by default
    assert peft_trainable == k * 384  # one free 384-vector per virtual token
    assert classical.trainable_parameters() == peft_trainable + head
    circuit = parameter_counts(quantum)["circuit_weights"]
    assert circuit == 4 * 2 * 2  # hardware_efficient: 2 angles per qubit and layer
    # angles (k x n_qubits) + circuit weights + bias-free projection (n_qubits x 384) + head
    assert quantum.trainable_parameters() == k * 4 + circuit + 4 * 384 + head
    adapter_q, adapter_c = quantum.trainable_parameters() - head, peft_trainable
    print(f"trainable: quantum_prompt {quantum.trainable_parameters()} ({adapter_q} without "
          f"head), prompt {classical.trainable_parameters()} ({adapter_c} without head)")
    assert abs(adapter_q / adapter_c - 1) <= 0.10  # 1572 vs 1536: +2.3 %
    assert abs(quantum.trainable_parameters() / classical.trainable_parameters() - 1) <= 0.10


def test_no_prompts_is_the_backbone(minilm):
    ids, mask = minilm.tokenize(TEXTS, 12)
    with torch.no_grad():
        plain = minilm.model(input_ids=ids, attention_mask=mask).last_hidden_state
        empty = run_with_prompts(minilm.model, torch.zeros(0, 384), ids, mask).last_hidden_state
    torch.testing.assert_close(empty, plain, atol=0, rtol=0)


@pytest.mark.parametrize("adapter", PROMPTS)
def test_features_differ_from_the_backbone_only_through_the_prompts(minilm, adapter):
    torch.manual_seed(1)
    ids, mask = minilm.tokenize(TEXTS, 12)
    model = build(minilm, adapter, 2)
    with torch.no_grad():
        prompts = model.encoder.prompts()
        assert prompts.shape == (4, 384)
        features = model.features(ids, mask)
        torch.testing.assert_close(features, _by_hand(minilm, prompts, ids, mask))
        frozen = mean_pool(minilm.model(input_ids=ids, attention_mask=mask).last_hidden_state,
                           mask)
        assert not torch.allclose(features, frozen, atol=1e-3)  # the prompts do steer


def test_quantum_prompts_go_in_exactly_where_peft_puts_its_own(minilm):
    """peft's forward, its prompt table set to the VQC's vectors, gives the same features."""
    torch.manual_seed(2)
    ids, mask = minilm.tokenize(TEXTS, 12)
    quantum, classical = build(minilm, "quantum_prompt", 2), build(minilm, "prompt", 2)
    with torch.no_grad():
        vectors = quantum.encoder.prompts()
        classical.encoder.encoder.prompt_encoder["default"].embedding.weight.copy_(vectors)
        torch.testing.assert_close(classical.features(ids, mask), quantum.features(ids, mask),
                                   atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("adapter", PROMPTS)
def test_only_the_prompt_parts_get_gradients(minilm, adapter):
    ids, mask = minilm.tokenize(TEXTS[:1], 8)
    model = build(minilm, adapter, 2)
    model(ids, mask).sum().backward()
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    assert all(n.startswith("head.") or "prompt" in n or "generator" in n for n in trained)
    if adapter == "quantum_prompt":
        assert {"encoder.generator.angles", "encoder.generator.project.weight",
                "encoder.generator.vqc.weights"} <= trained
        assert model.encoder.generator.vqc.weights.grad.abs().sum() > 0


@pytest.mark.parametrize("adapter", PROMPTS)
def test_prompts_train_and_resume_exactly(minilm, small_task, tmp_path, monkeypatch, adapter):
    cfg = FinetuneConfig(adapter=adapter, max_length=8, epochs=2, batch_size=8, max_steps=4,
                         checkpoint_every=2, progress=False, lr=5e-3, seed=3)
    with preserve_global_rng():
        seed_global(cfg.seed)  # as finetune seeds before it builds: the same initial prompts
        before = build(minilm, adapter, 2).encoder.prompts().detach()
    full, _ = finetune_and_resume(cfg, small_task, tmp_path, monkeypatch, crash_step=2)
    assert len(full["losses"]) == 4
    trained = full["model"].encoder.prompts().detach()
    assert trained.shape == before.shape and not torch.equal(trained, before)
    assert full["params"]["trainable"] == build(minilm, adapter, 2).trainable_parameters()
    assert weights_sha256(minilm.model) == minilm.sha256  # the backbone is bit-identical


def test_peft_preset_lists_both_prompt_adapters():
    from qllm.experiments.peft import ADAPTER_SETTINGS, peft_configs

    assert set(PROMPTS) <= set(ADAPTER_SETTINGS)
    cfgs = peft_configs(["stdlib_topics"], seeds=(0, 1), adapters=PROMPTS)
    assert sorted((c.adapter, c.seed) for c in cfgs) == sorted(
        (a, s) for a in PROMPTS for s in (0, 1))


def test_cli_finetunes_a_quantum_prompt(minilm, tmp_path):
    import json

    from qllm.cli import main

    out = tmp_path / "run"
    args = ["finetune", "--backbone", "minilm", "--adapter", "quantum_prompt", "--task",
            "stdlib_topics", "--set", "max_train=16", "--set", "max_length=8", "--set",
            "train.max_steps=2", "--set", "progress=false", "--set", "rank=2", "--set",
            "task_options={\"per_class\": 8}", "--out", str(out)]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["steps"] == 2 and res["backbone"]["sha256"] == minilm.sha256
    # rank=2 prompt tokens: 2x4 angles + 16 circuit weights + 4x384 projection + 384x7+7 head
    assert res["params"]["trainable"] == 2 * 4 + 16 + 4 * 384 + 384 * 7 + 7
    assert [s["name"] for s in res["cost"]["sites"]] == ["encoder.generator.vqc"]
