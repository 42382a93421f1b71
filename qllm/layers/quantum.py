"""Quantum sublayers: thin classical projections around QuantumLayers.

- QuantumFFN: Linear(C -> n_inputs) -> VQC -> Linear(n_observables -> C).
- QuantumAttention: per head, VQCs compute the query, key and value (head size = n_observables),
  then ordinary scaled dot-product attention (causal for language modelling), then Linear(-> C).
- QSANNAttention: quantum self-attention in the style of QSANN (Li et al., arXiv:2205.05625): a
  VQC measures one value for the query and one for the key of each token, attention weights are a
  Gaussian kernel softmax(-(q_i - k_j)^2), values are VQC expectation vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from qllm.layers.classical import mask_future
from qllm.layers.projected import ProjectedAttention, ProjectedFFN
from qllm.quantum_layer import QuantumLayer, share_weights, stacked_forward


def make_vqc(qcfg, observables=None, spec=None) -> QuantumLayer:
    """A QuantumLayer from a QuantumConfig (one fresh set of circuit weights); ``spec``: a
    circuit already built from it, to share one spec object between layers."""
    return QuantumLayer(spec or qcfg.build_spec(observables), qcfg.backend, init=qcfg.init,
                        gradient=qcfg.gradient, spsa_samples=qcfg.spsa_samples,
                        backend_options=qcfg.backend_options)


class QuantumFFN(ProjectedFFN):
    core_name = "vqc"

    def __init__(self, cfg):
        super().__init__(cfg, make_vqc(cfg.quantum))


class QuantumAttention(ProjectedAttention):
    core_name = "vqcs"

    def __init__(self, cfg):
        spec = cfg.quantum.build_spec()  # one object: the stacked call compares specs per step
        super().__init__(cfg, [make_vqc(cfg.quantum, spec=spec) for _ in range(3 * cfg.n_head)])
        share_weights(self, "vqc_weights", list(self.vqcs))  # one tensor: see share_weights

    def run_cores(self, angles: torch.Tensor) -> torch.Tensor:
        return stacked_forward(self.vqcs, angles)  # one engine call for every head

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, nh, T, T)`` for inspection."""
        B, T, _ = x.shape
        angles = self.down(x).view(B, T, 3 * self.n_head, -1)
        out = stacked_forward(self.vqcs[:2 * self.n_head], angles[:, :, :2 * self.n_head])
        q, k = out.view(B, T, 2, self.n_head, self.hs).permute(2, 0, 3, 1, 4)
        att = q @ k.transpose(-2, -1) / self.hs**0.5
        return (mask_future(att) if self.causal else att).softmax(-1)


class QSANNAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.causal = cfg.task == "lm"
        n = cfg.quantum.n_qubits
        z0, v = cfg.quantum.build_spec(("Z" + "I" * (n - 1),)), cfg.quantum.build_spec()
        self.q_vqcs = nn.ModuleList(make_vqc(cfg.quantum, spec=z0) for _ in range(cfg.n_head))
        self.k_vqcs = nn.ModuleList(make_vqc(cfg.quantum, spec=z0) for _ in range(cfg.n_head))
        self.v_vqcs = nn.ModuleList(make_vqc(cfg.quantum, spec=v) for _ in range(cfg.n_head))
        n_in, self.hs = self.v_vqcs[0].n_inputs, self.v_vqcs[0].n_outputs
        self.down = nn.Linear(cfg.n_embd, cfg.n_head * n_in)
        self.proj = nn.Linear(cfg.n_head * self.hs, cfg.n_embd)

    def attention_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        angles = self.down(x).view(B, T, self.n_head, -1)  # (B, T, nh, n_inputs)
        q = stacked_forward(self.q_vqcs, angles).transpose(1, 2)  # (B, nh, T, 1)
        k = stacked_forward(self.k_vqcs, angles).transpose(1, 2)
        logits = -(q - k.transpose(-2, -1)) ** 2  # Gaussian kernel, (B, nh, T, T)
        return (mask_future(logits) if self.causal else logits).softmax(-1), angles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        att, angles = self.attention_maps(x)
        v = stacked_forward(self.v_vqcs, angles).transpose(1, 2)  # (B, nh, T, hs)
        y = att @ v  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))
