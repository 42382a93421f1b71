"""Attention maps that the sublayers expose for inspection agree with what their forward computes
(reference: torch's scaled_dot_product_attention), with and without the causal mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qllm.config import ModelConfig
from qllm.layers.classical import SelfAttention, mask_future


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_classical_attention_maps_reproduce_the_forward(task):
    torch.manual_seed(3)
    inputs = {"vocab_size": 7} if task == "lm" else {"input_dim": 4, "n_classes": 3}
    cfg = ModelConfig(n_embd=16, n_head=4, task=task, **inputs)
    att = SelfAttention(cfg).eval()
    x = torch.randn(2, 5, 16)
    maps = att.attention_maps(x)  # (B, nh, T, T)
    assert maps.shape == (2, 4, 5, 5)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 5))
    q, k, v = att._heads(x)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=task == "lm")
    torch.testing.assert_close(maps @ v, ref, atol=1e-6, rtol=1e-5)
    if task == "lm":
        assert (maps.triu(1) == 0).all()


def test_mask_future_sets_only_keys_after_the_query():
    att = mask_future(torch.zeros(3, 3))
    assert torch.isinf(att).tolist() == [[False, True, True], [False, False, True],
                                         [False, False, False]]
