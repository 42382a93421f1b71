"""Mixture of quantum experts (qllm.layers.experts): routing and the Switch loss against hand
computations, stacked experts against each expert run alone (values and gradients), the ledger
counting k circuits per token, exact resume, and errors that name the argument."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import qllm.train as T
from qllm.config import ModelConfig, MoEConfig, TrainConfig
from qllm.errors import ConfigError
from qllm.layers.experts import (
    classical_expert_hidden,
    expert_capacity,
    load_balancing_loss,
    route,
    run_stacked,
)
from qllm.model import HybridTransformer
from qllm.quantum_layer import QuantumLayer
from tests.resume_helpers import train_and_resume

pytestmark = pytest.mark.usefixtures("one_thread")

QMOE = dict(input_dim=4, n_embd=8, n_head=2, n_layer=1, ffn="quantum_moe",
            quantum=dict(n_qubits=3, n_layers=1),
            moe=dict(n_experts=4, top_k=1, capacity_factor=0))


def _model(**moe) -> HybridTransformer:
    cfg = ModelConfig.from_dict({**QMOE, "moe": {**QMOE["moe"], **moe}})
    return HybridTransformer(cfg).double()


# -- routing and the auxiliary loss -------------------------------------------------------------
def test_route_top1_and_capacity_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [3.0, 0.0, 1.0], [1.0, 0.0, 0.0],
                           [0.0, 0.0, 5.0]])
    r = route(logits, top_k=1, capacity_factor=1.0)  # capacity ceil(1.0 * 5 * 1 / 3) = 2
    e = np.exp(logits.numpy())
    probs = e / e.sum(1, keepdims=True)
    np.testing.assert_allclose(r.probs.numpy(), probs, rtol=1e-6)
    assert r.experts[:, 0].tolist() == [0, 1, 0, 0, 2]
    np.testing.assert_allclose(r.gates[:, 0].numpy(), probs.max(1), rtol=1e-6)
    # expert 0 is chosen by tokens 0, 2, 3: the third (token 3) is over capacity 2
    assert r.keep[:, 0].tolist() == [True, True, True, False, True]
    assert r.position[:, 0].tolist() == [0, 0, 1, 2, 0]  # each token's place in its queue
    assert r.chosen.tolist() == [3, 1, 1]  # before capacity
    assert expert_capacity(5, 3, 1, 1.0) == 2 and expert_capacity(5, 3, 1, 0) == 5


def test_route_top2_renormalises_and_fills_first_choices_first():
    logits = torch.tensor([[3.0, 2.0, 0.0], [0.0, 3.0, 2.0], [2.0, 3.0, 0.0]])
    r = route(logits, top_k=2, capacity_factor=0.5)  # capacity ceil(0.5 * 3 * 2 / 3) = 1
    assert r.experts.tolist() == [[0, 1], [1, 2], [1, 0]]
    p = r.probs.numpy()
    chosen = np.take_along_axis(p, r.experts.numpy(), 1)
    np.testing.assert_allclose(r.gates.numpy(), chosen / chosen.sum(1, keepdims=True), rtol=1e-6)
    # first choices in token order: e0<-t0, e1<-t1, e1<-t2 (full); then second: e1<-t0 (full),
    # e2<-t1, e0<-t2 (full)
    assert r.keep.tolist() == [[True, False], [True, True], [False, False]]
    assert r.position.tolist() == [[0, 2], [0, 0], [1, 1]]  # e1: t1, t2, then t0 second
    assert r.chosen.tolist() == [2, 3, 1]


def test_load_balancing_loss_by_hand(gen):
    logits = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    for k in (1, 2):
        r = route(logits, top_k=k, capacity_factor=0)
        p = torch.softmax(logits, -1).numpy()
        counts = np.zeros(4)
        for row in r.experts.tolist():
            for e in row:
                counts[e] += 1
        expected = 4 * sum(counts[i] / (7 * k) * p[:, i].mean() for i in range(4))
        assert float(load_balancing_loss(r)) == pytest.approx(expected, rel=1e-12)
    uniform = route(torch.zeros(4, 4), 1, 0)  # argmax ties -> expert 0 for every token: f=(1,0..)
    assert float(load_balancing_loss(uniform)) == pytest.approx(1.0)


def test_aux_loss_reaches_the_training_loss():
    model = _model(aux_loss_weight=0.5)
    x = torch.rand(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    model(x)
    ffn = model.blocks[0].ffn
    r = route(ffn.router(model.blocks[0].norm2(_hidden(model, x)).reshape(-1, 8)), 1, 0)
    assert float(model.aux_loss().detach()) == pytest.approx(0.5 * float(load_balancing_loss(r).detach()), rel=1e-9)
    classical = HybridTransformer(ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1))
    classical(x.float())
    assert classical.aux_loss() == 0.0


def _hidden(model, x):
    """The input of the first block's FFN sublayer (after its attention residual)."""
    h = model.embed(x) + model.pos(torch.arange(x.shape[1]))
    b = model.blocks[0]
    return h + b.mixer(b.norm1(h))


# -- stacked experts == each expert alone -------------------------------------------------------
def test_run_stacked_equals_each_layer_alone_values_and_gradients(gen):
    from qllm.circuits import build_circuit

    spec = build_circuit(n_qubits=3, n_layers=2)
    layers = [QuantumLayer(spec).double() for _ in range(4)]
    counts = [5, 0, 2, 7]
    x = torch.rand(4, 7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    out = run_stacked(layers, x, counts)  # one stacked engine call
    assert out.shape == (4, 7, 3)
    for layer, n in zip(layers, counts):  # stats count the routed tokens, not the padding
        assert layer.backend.stats.circuits == n
    ref = [layer(x[e, :n]) for e, (layer, n) in enumerate(zip(layers, counts))]  # one by one
    c = [torch.rand(n, 3, generator=gen, dtype=torch.float64) for n in counts]
    wanted = [x, *(layer.weights for layer in layers)]
    grads = torch.autograd.grad(sum((out[e, :n] * c[e]).sum() for e, n in enumerate(counts)),
                                wanted)
    grads_ref = torch.autograd.grad(sum((r * w).sum() for r, w in zip(ref, c)), wanted,
                                    allow_unused=True)
    for e, n in enumerate(counts):
        torch.testing.assert_close(out[e, :n], ref[e], rtol=1e-10, atol=1e-10)
    for g, gr in zip(grads, grads_ref):
        torch.testing.assert_close(g, torch.zeros_like(g) if gr is None else gr,
                                   rtol=1e-10, atol=1e-10)
    seen = []  # a hook forces the one-by-one path: it sees exactly the routed tokens
    hook = layers[2].register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0]))
    one_by_one = run_stacked(layers, x, counts)
    hook.remove()
    for e, n in enumerate(counts):  # rows past counts[e] are padding, never read
        torch.testing.assert_close(one_by_one[e, :n], out[e, :n], rtol=1e-10, atol=1e-10)
    assert seen == [2]


@pytest.mark.parametrize("top_k,capacity", [(1, 0), (2, 0), (2, 0.75)])
def test_quantum_moe_equals_a_dense_reference(top_k, capacity):
    """Every expert on every token, then the router's choice, by hand: same values and router,
    projection and circuit gradients."""
    model = _model(top_k=top_k, capacity_factor=capacity)
    ffn = model.blocks[0].ffn
    x = torch.rand(2, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = ffn(x)
    flat = x.reshape(-1, 8)
    r = route(ffn.router(flat), top_k, capacity)
    dense = torch.stack([ffn.expert(e, flat) for e in range(ffn.n_experts)], 1)  # (N, E, C)
    ref = torch.zeros_like(flat)
    for t in range(len(flat)):
        for j in range(top_k):
            if r.keep[t, j]:
                ref[t] = ref[t] + r.gates[t, j] * dense[t, r.experts[t, j]]
    torch.testing.assert_close(y.reshape(-1, 8), ref, rtol=1e-10, atol=1e-10)
    params = list(ffn.parameters())
    g = torch.autograd.grad(y.square().sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad(ref.square().sum(), params, allow_unused=True)
    for a, b in zip(g, g_ref):
        if b is None:
            assert a is None or float(a.abs().max()) == 0
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


# -- what hardware would run ------------------------------------------------------------------------
@pytest.mark.parametrize("top_k", [1, 2])
def test_backend_stats_and_cost_report_count_k_circuits_per_token(top_k):
    """Training with a tight capacity runs the kept assignments only; evaluation (and so the
    cost report's dry run) runs exactly k circuits per token, whatever the number of experts."""
    model = _model(top_k=top_k, capacity_factor=0.5)
    x = torch.rand(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    layers = model.quantum_layers()
    model(x)  # training mode: capacity ceil(0.5 * 15 * k / 4) per expert
    ffn = model.blocks[0].ffn
    kept = sum(layer.backend.stats.circuits for layer in layers)
    assert kept == int(ffn.routed.sum()) and kept + int(ffn.dropped.sum()) == 15 * top_k
    assert kept <= 4 * math.ceil(0.5 * 15 * top_k / 4) < 15 * top_k
    for layer in layers:
        layer.backend.stats.reset()
    model.eval()(x)
    assert sum(layer.backend.stats.circuits for layer in layers) == 15 * top_k
    report = model.float().cost_report(seq_len=5, target=None, profile=())
    assert sum(row.circuits_per_token for row in report.quantum) == pytest.approx(top_k)


def test_training_records_utilisation_in_the_cost_report():
    res = T.train(ModelConfig.from_dict(QMOE),
                  TrainConfig(task="parity", task_options={"n": 40, "seq_len": 4}, batch_size=8,
                              epochs=1, progress=False),
                  cost_options={"target": None, "profile": ()})
    u = res["cost"]["utilisation"]["blocks.0.ffn"]
    from qllm.data import load_task, with_validation

    n_train = len(with_validation(load_task("parity", n=40, seq_len=4), 0.1, 0).x_train)
    assert u["assignments"] == n_train * 4  # training sequences x 4 tokens, top-1
    assert sum(u["share"]) + sum(u["dropped_share"]) == pytest.approx(1.0)


# -- the classical control --------------------------------------------------------------------------
def test_classical_moe_matches_a_quantum_experts_parameters():
    q = HybridTransformer(ModelConfig.from_dict({**QMOE, "n_embd": 32}))
    c = HybridTransformer(ModelConfig.from_dict({**QMOE, "n_embd": 32, "ffn": "moe"}))
    def per_expert(ffn):  # every parameter but the router's, shared out over the experts
        router = sum(p.numel() for p in ffn.router.parameters())
        return (sum(p.numel() for p in ffn.parameters()) - router) / ffn.n_experts

    q_expert, c_expert = per_expert(q.blocks[0].ffn), per_expert(c.blocks[0].ffn)
    assert abs(c_expert - q_expert) <= 2 * 32 + 1  # within one hidden unit
    assert classical_expert_hidden(c.config) == round((q_expert - 32) / 65)
    assert c.quantum_layers() == [] and not c.config.quantum_sublayers


# -- training, checkpoint, exact resume ---------------------------------------------------------
def test_quantum_moe_trains_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    model_cfg = ModelConfig.from_dict({**QMOE, "dropout": 0.1,
                                       "moe": {"n_experts": 3, "top_k": 2}})
    train_cfg = TrainConfig(task="parity", task_options={"n": 50, "seq_len": 4}, batch_size=8,
                            epochs=2, checkpoint_every=3, progress=False, seed=5)
    whole, resumed = train_and_resume(monkeypatch, tmp_path, model_cfg, train_cfg, crash_step=3)
    assert len(whole["losses"]) == 10
    assert whole["final"] == resumed["final"]


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("moe,word", [({"top_k": 5}, "moe.top_k"), ({"n_experts": 0}, "moe.n_experts"),
                                      ({"capacity_factor": -1}, "moe.capacity_factor"),
                                      ({"aux_loss_weight": math.nan}, "moe.aux_loss_weight")])
def test_bad_moe_config_names_the_argument(moe, word):
    with pytest.raises(ConfigError, match=word):
        MoEConfig(**{"n_experts": 4, **moe})


def test_cli_rejects_top_k_above_n_experts_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "qllm.cli", "train", "--task", "digits", "--set",
                        "ffn=quantum_moe", "--set", "moe.n_experts=2", "--set", "moe.top_k=3",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "moe.top_k=3 exceeds moe.n_experts=2" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_moe_speed_benchmark_times_every_variant(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import moe_speed

    out = moe_speed.main(["--steps", "2", "--warmup", "1", "--batch", "2", "--seq-len", "4",
                          "--n-embd", "8", "--n-layer", "1", "--qubits", "3",
                          "--capacity-factor", "0", "--out", str(tmp_path / "speed.json")])
    rows = {r["variant"]: r for r in out["rows"]}
    assert set(rows) == {"qffn", "qmoe-4e-top1", "moe-4e-top1 (classical)", "classical"}
    assert rows["qffn"]["ratio_to_qffn"] == 1.0 and rows["qmoe-4e-top1"]["median_ms"] > 0
    # no capacity limit: exactly one circuit per token, as the single quantum FFN
    assert rows["qmoe-4e-top1"]["circuits_per_token"] == rows["qffn"]["circuits_per_token"] == 1
    assert (tmp_path / "speed.json").exists()


@pytest.mark.parametrize("ffn,names", [("quantum_moe", {"down": "down", "up": "up"}),
                                       ("moe", {"fc": "0", "proj": "2"})])
def test_checkpoints_with_one_linear_per_expert_still_load(ffn, names):
    """Before the stacked parameters each expert kept its own Linear (``experts.{e}.down``, or
    ``experts.{e}.0`` in a classical expert's Sequential): such state dicts load into the
    stacked layout and give the same outputs."""
    torch.manual_seed(5)
    model = HybridTransformer(ModelConfig.from_dict({**QMOE, "ffn": ffn})).double()
    old = {}
    for key, value in model.state_dict().items():
        head, _, kind = key.rpartition(".")
        base, _, name = head.rpartition(".")
        if name in names and kind in ("weight", "bias") and base.endswith("ffn"):
            for e in range(value.shape[0]):
                old[f"{base}.experts.{e}.{names[name]}.{kind}"] = value[e].clone()
        else:
            old[key] = value.clone()
    x = torch.rand(2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    want = model.eval()(x)[0]
    torch.manual_seed(7)  # a fresh model with other weights, then the old-layout state
    fresh = HybridTransformer(ModelConfig.from_dict({**QMOE, "ffn": ffn})).double().eval()
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh(x)[0], want, rtol=0, atol=0)
