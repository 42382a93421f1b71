"""Circuits whose weights live in one parameter of the enclosing module (quantum attention's
3 x heads VQCs, the quantum MoE's experts; ``qllm.quantum_layer.share_weights``): the same
values and gradients as layers that own their weights, state dicts written either way load,
and compression, deep copies and the optimizer's groups see them right."""

from __future__ import annotations

import copy

import pytest
import torch

from qllm.compress.apply import compress_model
from qllm.config import ModelConfig, MoEConfig, QuantumConfig, TrainConfig
from qllm.model import HybridTransformer
from qllm.quantum_layer import stacked_weights
from qllm.train import _optimizer


def _model(**kw) -> HybridTransformer:
    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=4, n_classes=10, block_size=8, n_embd=16, n_head=2, n_layer=2,
                      quantum=QuantumConfig(n_qubits=4), **kw)
    return HybridTransformer(cfg).double()


def _batch():
    g = torch.Generator().manual_seed(1)
    return (torch.rand(3, 8, 4, generator=g, dtype=torch.float64),
            torch.randint(0, 10, (3,), generator=g))


@pytest.mark.parametrize("kw", [dict(attn="quantum"), dict(ffn="quantum_moe", moe=MoEConfig())])
def test_one_parameter_holds_every_circuits_weights(kw):
    model = _model(**kw)
    for block in model.blocks:
        owner = block.mixer if "attn" in kw else block.ffn
        layers = [m for m in owner.modules() if m in model.quantum_layers()]
        assert [n for n, _ in owner.named_parameters() if "vqc" in n] == ["vqc_weights"]
        assert stacked_weights(layers).data_ptr() == owner.vqc_weights.data_ptr()  # no copy
        for h, layer in enumerate(layers):
            assert torch.equal(layer.weights, owner.vqc_weights[h])


def test_values_and_gradients_equal_layers_run_one_by_one():
    # the reference: the same model with a forward hook on one circuit, which makes
    # stacked_forward run every circuit through its own layer (and stack their weights)
    model, x_y = _model(attn="quantum"), _batch()
    _, loss = model(*x_y)
    loss.backward()
    stacked = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    handle = model.quantum_layers()[0].register_forward_hook(lambda *a: None)
    _, loss_ref = model(*x_y)
    loss_ref.backward()
    handle.remove()
    torch.testing.assert_close(loss, loss_ref, atol=1e-12, rtol=0)
    for a, p in zip(stacked, model.parameters()):
        torch.testing.assert_close(a, p.grad, atol=1e-12, rtol=0)
    layer = model.quantum_layers()[5]
    torch.testing.assert_close(layer.weights_grad, model.blocks[0].mixer.vqc_weights.grad[5])


def test_state_dicts_with_per_layer_weights_load():
    model = _model(attn="quantum")
    state = model.state_dict()
    old = {k: v for k, v in state.items() if not k.endswith("vqc_weights")}
    for b in range(2):  # the layout before: each circuit's own key
        for h, row in enumerate(state[f"blocks.{b}.mixer.vqc_weights"]):
            old[f"blocks.{b}.mixer.vqcs.{h}.weights"] = row.clone()
    fresh = _model(attn="quantum")
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    fresh.load_state_dict(old)
    x, _ = _batch()
    torch.testing.assert_close(fresh(x), model(x), atol=0, rtol=0)


def test_deep_copies_share_within_the_copy():
    model = copy.deepcopy(_model(attn="quantum"))
    owner = model.blocks[1].mixer
    assert all(layer.shared_weights[0] is owner.vqc_weights for layer in owner.vqcs)


def test_compression_gives_each_circuit_its_own_weights():
    model = _model(attn="quantum")
    small, _ = compress_model(model, tol=1e-3)
    names = [n for n, _ in small.named_parameters()]
    assert not any(n.endswith("vqc_weights") for n in names)
    assert sum(n.endswith(".weights") for n in names) == len(small.quantum_layers())
    x, _ = _batch()
    torch.testing.assert_close(small(x), model(x), atol=1e-3, rtol=0)


def test_circuit_angles_stay_out_of_weight_decay():
    model = _model(attn="quantum")
    opt, _ = _optimizer(model, TrainConfig(), 10)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert all(id(b.mixer.vqc_weights) not in decayed for b in model.blocks)
    assert id(model.blocks[0].mixer.down.weight) in decayed
