"""Mixture-of-experts feed-forward sublayers: ``ffn="quantum_moe"`` and its classical control
``ffn="moe"``.

A router (Linear(C -> E), softmax, top-k) sends each token to k of E experts; tokens beyond an
expert's capacity (Switch Transformer, Fedus et al. arXiv:2101.03961) are dropped from it and pass
through the residual. The layer keeps the Switch load-balancing loss of its last forward in
``aux_loss`` (``weight * E * sum_i f_i P_i``; f_i the fraction of routing assignments to expert i,
P_i its mean router probability), which the model adds to the training loss.

Quantum experts (QMoE-style re-uploading VQCs inside the FFN) are each Linear(C -> n_inputs) ->
VQC -> Linear(n_observables -> C) with one circuit shape. Only the tokens routed to an expert are
simulated for it, and all experts run as one stacked engine call (``simulate_stacked``) with each
expert's token set padded to the largest; the padded rows are not counted: each expert's backend
stats (and the cost ledger) count the tokens it was routed, so k circuits per token, not E.
Classical experts are MLPs whose hidden width matches a quantum expert's parameter count by
default, so ``moe`` and ``quantum_moe`` have the same active parameters per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from qllm.layers.quantum import make_vqc
from qllm.quantum_layer import QuantumLayer, _stacks_with
from qllm.validate import check_angles


@dataclass
class Routing:
    """What the router decided for N tokens: ``probs [N, E]`` (softmax), ``experts [N, k]``
    (chosen expert ids, best first), ``gates [N, k]`` (output weights), ``keep [N, k]`` (False
    where the expert was over capacity)."""

    probs: torch.Tensor
    experts: torch.Tensor
    gates: torch.Tensor
    keep: torch.Tensor


def expert_capacity(n_tokens: int, n_experts: int, top_k: int, capacity_factor: float) -> int:
    """Most tokens one expert takes: ``ceil(factor * N * k / E)``; factor 0 means no limit."""
    if capacity_factor == 0:
        return n_tokens
    return min(n_tokens, math.ceil(capacity_factor * n_tokens * top_k / n_experts))


def route(logits: torch.Tensor, top_k: int, capacity_factor: float) -> Routing:
    """Top-k routing with capacity. Args: ``logits [N, E]``. Gates are the chosen softmax
    probabilities (top-1, as Switch, so the router gets a gradient), renormalised over the k
    chosen for k > 1 (as Mixtral). Capacity is filled first choices first, then in token order
    (GShard)."""
    N, E = logits.shape
    probs = logits.softmax(-1)  # (N, E)
    top_p, experts = probs.topk(top_k, dim=-1)  # (N, k)
    gates = top_p if top_k == 1 else top_p / top_p.sum(-1, keepdim=True)
    order = F.one_hot(experts.t().reshape(-1), E)  # (k*N, E): slot-major, then token order
    position = (order.cumsum(0) * order).sum(-1) - 1  # place of each assignment in its expert
    cap = expert_capacity(N, E, top_k, capacity_factor)
    keep = (position < cap).view(top_k, N).t()  # (N, k)
    return Routing(probs, experts, gates, keep)


def load_balancing_loss(routing: Routing) -> torch.Tensor:
    """Switch's auxiliary loss ``E * sum_i f_i P_i`` (1 when uniform): f_i the fraction of the
    N*k assignments (before capacity) sent to expert i, P_i the mean router probability."""
    E = routing.probs.shape[-1]
    f = F.one_hot(routing.experts.reshape(-1), E).to(routing.probs.dtype).mean(0)  # (E,)
    return E * (f * routing.probs.mean(0)).sum()


class MoEFFN(nn.Module):
    """Router + experts; subclasses build the experts and run them on their token sets.

    Input ``(B, T, C)``; returns ``(B, T, C)``. Counts of tokens routed to (and dropped by) each
    expert while training accumulate in the buffers ``routed`` and ``dropped`` (``utilisation``).
    """

    def __init__(self, cfg):
        super().__init__()
        moe = cfg.moe
        self.n_experts, self.top_k = moe.n_experts, moe.top_k
        self.capacity_factor, self.aux_weight = moe.capacity_factor, moe.aux_loss_weight
        self.router = nn.Linear(cfg.n_embd, moe.n_experts)
        self.drop = nn.Dropout(cfg.dropout)
        self.register_buffer("routed", torch.zeros(moe.n_experts, dtype=torch.float64))
        self.register_buffer("dropped", torch.zeros(moe.n_experts, dtype=torch.float64))
        self.aux_loss: torch.Tensor | None = None

    def run_experts(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """``[expert_e(xs[e]) for e]``: each ``[n_e, C] -> [n_e, C]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        flat = x.reshape(B * T, C)
        r = route(self.router(flat), self.top_k, self.capacity_factor)
        self.aux_loss = self.aux_weight * load_balancing_loss(r)
        token = torch.arange(B * T, device=x.device).expand(self.top_k, -1).t()  # (N, k)
        picks = [(r.experts == e) & r.keep for e in range(self.n_experts)]  # (N, k) each
        outs = self.run_experts([flat[token[p]] for p in picks])
        y = torch.zeros_like(flat)
        for p, out in zip(picks, outs):
            y = y.index_add(0, token[p], out * r.gates[p].unsqueeze(-1))
        if self.training:
            with torch.no_grad():
                chosen = F.one_hot(r.experts.reshape(-1), self.n_experts).sum(0)
                kept = torch.stack([p.sum() for p in picks])
                self.routed += kept.to(self.routed.dtype)
                self.dropped += (chosen - kept).to(self.dropped.dtype)
        return self.drop(y.view(B, T, C))

    def utilisation(self) -> dict:
        """Fractions of the training-time routing assignments each expert ran and dropped."""
        total = float(self.routed.sum() + self.dropped.sum())
        if total == 0:
            return {"assignments": 0, "share": [], "dropped_share": []}
        return {"assignments": int(total),
                "share": [float(v) / total for v in self.routed],
                "dropped_share": [float(v) / total for v in self.dropped]}


class QuantumExpert(nn.Module):
    """Linear(C -> n_inputs) -> VQC -> Linear(n_observables -> C), as ``QuantumFFN``."""

    def __init__(self, cfg):
        super().__init__()
        self.vqc = make_vqc(cfg.quantum)
        self.down = nn.Linear(cfg.n_embd, self.vqc.n_inputs)
        self.up = nn.Linear(self.vqc.n_outputs, cfg.n_embd)


class QuantumMoE(MoEFFN):
    """``ffn="quantum_moe"``: E VQC experts of one circuit shape, simulated as one stacked call
    on the tokens routed to each (see the module docstring)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.experts = nn.ModuleList(QuantumExpert(cfg) for _ in range(self.n_experts))

    def run_experts(self, xs):
        angles = [ex.down(x) for ex, x in zip(self.experts, xs)]  # [n_e, n_inputs] each
        vqcs = [ex.vqc for ex in self.experts]
        out = run_stacked(vqcs, angles)
        return [ex.up(o) for ex, o in zip(self.experts, out)]


def run_stacked(layers: list[QuantumLayer], xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """``[layers[e](xs[e]) for e]`` for token sets of different sizes ``xs[e]: [n_e, n_inputs]``.

    Where the layers stack (``qllm.quantum_layer.stacked_forward``'s conditions: one spec, the
    native exact backend, no hooks), the sets are zero-padded to the largest and run as one
    ``simulate_stacked`` call; each layer's stats count its own n_e, not the padding. Otherwise
    each non-empty set runs through its layer (hooks see exactly the routed tokens)."""
    first = layers[0]
    if not all(_stacks_with(layer, first) for layer in layers):
        return [layer(x) if len(x) else x.new_zeros(0, layer.n_outputs)
                for layer, x in zip(layers, xs)]
    from qllm.engine import simulate_stacked

    spec, backend = first.spec, first.backend
    counts = [len(x) for x in xs]
    width = max(counts)
    if width == 0:
        return [x.new_zeros(0, spec.n_observables) for x in xs]
    padded = torch.stack([F.pad(x, (0, 0, 0, width - len(x))) for x in xs])  # (E, width, n_in)
    check_angles(padded, "x", spec.n_inputs)
    weights = torch.stack([layer.weights for layer in layers]).to(padded.device, padded.dtype)
    check_angles(weights, "weights", spec.n_weights)
    backend.check_memory(spec, padded.reshape(-1, spec.n_inputs))
    out = simulate_stacked(spec, padded, weights, backend.strategy)  # (E, width, n_obs)
    backend.check_output(out, padded, weights)
    for layer, n in zip(layers, counts):
        layer.backend.stats.add(n, jobs=1 if n else 0)
    return [out[e, :n] for e, n in enumerate(counts)]


def classical_expert_hidden(cfg) -> int:
    """``moe.expert_hidden``, or (0) the MLP width whose parameters match one quantum expert's:
    ``h (2C + 1) + C`` against ``C n_in + n_in + n_obs C + C + n_weights``."""
    if cfg.moe.expert_hidden:
        return cfg.moe.expert_hidden
    spec, C = cfg.quantum.build_spec(), cfg.n_embd
    quantum = C * spec.n_inputs + spec.n_inputs + spec.n_observables * C + C + spec.n_weights
    return max(1, round((quantum - C) / (2 * C + 1)))


class ClassicalMoE(MoEFFN):
    """``ffn="moe"``: the same router over GELU MLP experts (the control at matched active
    parameters)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        h = classical_expert_hidden(cfg)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.n_embd, h), nn.GELU(), nn.Linear(h, cfg.n_embd))
            for _ in range(self.n_experts))

    def run_experts(self, xs):
        return [ex(x) for ex, x in zip(self.experts, xs)]
