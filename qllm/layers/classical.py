"""Classical sublayers (nanoGPT): causal or bidirectional self-attention, and the MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mask_future(att: torch.Tensor) -> torch.Tensor:
    """Attention logits ``(..., T, T)`` with every key after its query set to -inf (causal)."""
    T = att.shape[-1]
    return att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=att.device).triu(1),
                           float("-inf"))


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.causal = cfg.task == "lm"
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def _heads(self, x: torch.Tensor):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        return (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        # (B, nh, T, hs) each

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self._heads(x)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, nh, T, T)`` for inspection."""
        q, k, _ = self._heads(x)
        att = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        return (mask_future(att) if self.causal else att).softmax(-1)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = cfg.mlp_ratio * cfg.n_embd
        self.fc = nn.Linear(cfg.n_embd, hidden)
        self.proj = nn.Linear(hidden, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))
