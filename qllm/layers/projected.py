"""Classical projections around a core of ``n_inputs -> n_outputs`` (a circuit, or the bounded
classical map standing in for one): the shape the quantum sublayers and their bottleneck
controls share, so a control differs from its hybrid in the core alone.

- ProjectedFFN: Linear(C -> n_inputs) -> core -> Linear(n_outputs -> C) -> dropout.
- ProjectedAttention: per head, cores compute the query, key and value (head size =
  n_outputs) from one Linear(C -> 3 x heads x n_inputs), then scaled dot-product attention
  (causal for language modelling), then Linear(-> C).

A subclass names its core (``core_name``): the attribute, and so the state-dict keys
(``vqc.weights``, ``map.out.weight``) that saved checkpoints hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectedFFN(nn.Module):
    """Args: cfg (a ModelConfig: ``n_embd``, ``dropout``); core (a module with ``n_inputs``
    and ``n_outputs``). Shapes: ``(B, T, C) -> (B, T, C)``."""

    core_name = "core"

    def __init__(self, cfg, core: nn.Module):
        super().__init__()
        self.add_module(self.core_name, core)
        self.down = nn.Linear(cfg.n_embd, core.n_inputs)
        self.up = nn.Linear(core.n_outputs, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        core = self._modules[self.core_name]
        return self.drop(self.up(core(self.down(x))))  # (B, T, C)


class ProjectedAttention(nn.Module):
    """Args: cfg (a ModelConfig: ``n_embd``, ``n_head``, ``task``, ``dropout``); cores
    (3 x ``n_head`` modules alike: q, k, v per head). Subclasses implement ``run_cores``.
    Shapes: ``(B, T, C) -> (B, T, C)``."""

    core_name = "cores"

    def __init__(self, cfg, cores: list[nn.Module]):
        super().__init__()
        self.n_head = cfg.n_head
        self.causal = cfg.task == "lm"
        self.add_module(self.core_name, nn.ModuleList(cores))
        n_in, self.hs = cores[0].n_inputs, cores[0].n_outputs
        self.down = nn.Linear(cfg.n_embd, 3 * cfg.n_head * n_in)
        self.proj = nn.Linear(cfg.n_head * self.hs, cfg.n_embd)
        self.dropout = cfg.dropout

    def run_cores(self, angles: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``(B, T, 3*nh, n_inputs) -> (B, T, 3*nh, hs)``: core h on ``angles[:, :, h]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        angles = self.down(x).view(B, T, 3 * self.n_head, -1)  # (B, T, 3*nh, n_inputs)
        out = self.run_cores(angles)  # (B, T, 3*nh, hs)
        q, k, v = out.view(B, T, 3, self.n_head, self.hs).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))  # (B, T, C)
