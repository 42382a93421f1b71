"""Cross-modal fusion mixers for multimodal sequences (``ModelConfig.streams``).

Each is ordinary self-attention over the joined sequence plus a fusion term: the tokens of each
stream are mean-pooled, the pooled vectors are concatenated and projected to ``n_inputs`` angles,
a fusion function maps them to ``n_outputs`` values, and a projection of those is added at every
position (so each token sees a joint summary of both modalities).

- ``qfusion``: the fusion function is a VQC (``QuantumConfig``: its entanglers mix the image and
  text angles), in the spirit of quantum fusion layers (QFL) and QCLIP.
- ``fusion``: its classical twin: ``tanh(Linear(n_inputs -> n_outputs))``, the same interface
  and bounded range with a classical map.
"""

from __future__ import annotations

import torch
from torch import nn

from qllm.errors import ConfigError
from qllm.layers.classical import SelfAttention
from qllm.layers.quantum import make_vqc


class _Fusion(nn.Module):
    def __init__(self, cfg, n_inputs: int, n_outputs: int):
        super().__init__()
        if not cfg.streams:
            raise ConfigError(f"attn={cfg.attn!r} fuses input streams; set ModelConfig.streams "
                              "(a multimodal task such as 'digits_qa')")
        from qllm.multimodal import spans

        self.spans = spans(cfg.streams)
        self.attn = SelfAttention(cfg)
        self.down = nn.Linear(len(self.spans) * cfg.n_embd, n_inputs)
        self.up = nn.Linear(n_outputs, cfg.n_embd)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C)`` -> ``(B, n_streams * C)``: each stream's mean token, concatenated."""
        return torch.cat([x[:, a:b].mean(1) for a, b in self.spans], -1)

    def fuse(self, angles: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.up(self.fuse(self.down(self.pooled(x))))  # (B, C)
        return self.attn(x) + fused[:, None, :]  # (B, T, C)


class QuantumFusion(_Fusion):
    """Self-attention plus a VQC fusion of the pooled streams."""

    def __init__(self, cfg):
        vqc = make_vqc(cfg.quantum)
        super().__init__(cfg, vqc.n_inputs, vqc.n_outputs)
        self.vqc = vqc

    def fuse(self, angles: torch.Tensor) -> torch.Tensor:
        return self.vqc(angles)  # (B, n_observables) in [-1, 1]


class ClassicalFusion(_Fusion):
    """The classical twin: the VQC replaced by ``tanh(Linear)`` of the same widths."""

    def __init__(self, cfg):
        spec = cfg.quantum.build_spec()
        super().__init__(cfg, spec.n_inputs, spec.n_observables)
        self.mix = nn.Linear(spec.n_inputs, spec.n_observables)

    def fuse(self, angles: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mix(angles))
