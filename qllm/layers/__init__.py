"""Sublayer registries keyed by config: ``MIXERS[cfg.attn](cfg)`` and ``FFNS[cfg.ffn](cfg)``.
Add a kind with ``register_mixer`` / ``register_ffn``; the model never branches on backends."""

from __future__ import annotations

from qllm.layers.bottleneck import BottleneckAttention, BottleneckFFN
from qllm.layers.classical import MLP, SelfAttention
from qllm.layers.experts import ClassicalMoE, QuantumMoE
from qllm.layers.fusion import ClassicalFusion, QuantumFusion
from qllm.layers.quantum import QSANNAttention, QuantumAttention, QuantumFFN

MIXERS = {"classical": SelfAttention, "quantum": QuantumAttention, "qsann": QSANNAttention,
          "fusion": ClassicalFusion, "qfusion": QuantumFusion,
          "bottleneck": BottleneckAttention}  # bottleneck: the classical control of "quantum"
FFNS = {"classical": MLP, "quantum": QuantumFFN, "quantum_moe": QuantumMoE, "moe": ClassicalMoE,
        "bottleneck": BottleneckFFN}


def register_mixer(name: str, cls) -> None:
    MIXERS[name] = cls


def register_ffn(name: str, cls) -> None:
    FFNS[name] = cls


__all__ = ["MIXERS", "FFNS", "register_mixer", "register_ffn", "SelfAttention", "MLP",
           "QuantumFFN", "QuantumAttention", "QSANNAttention", "ClassicalFusion", "QuantumFusion",
           "QuantumMoE", "ClassicalMoE",
           "BottleneckFFN", "BottleneckAttention"]
