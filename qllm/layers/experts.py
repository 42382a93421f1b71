"""Mixture-of-experts feed-forward sublayers: ``ffn="quantum_moe"`` and its classical control
``ffn="moe"``.

A router (Linear(C -> E), softmax, top-k) sends each token to k of E experts; in training,
tokens beyond an expert's capacity (Switch Transformer, Fedus et al. arXiv:2101.03961) are dropped
from it and pass through the residual (evaluation drops none). The layer keeps the Switch load-balancing loss of its last forward in
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

from qllm.checkpoint import stack_on_load
from qllm.layers.quantum import make_vqc
from qllm.quantum_layer import QuantumLayer, _stacks_with, share_weights, stacked_call
from qllm.validate import check_angles


@dataclass
class Routing:
    """What the router decided for N tokens: ``probs [N, E]`` (softmax), ``experts [N, k]``
    (chosen expert ids, best first), ``gates [N, k]`` (output weights), ``position [N, k]`` (the
    assignment's place in its expert's queue), ``keep [N, k]`` (False where that place is
    beyond the expert's capacity) and ``chosen [E]`` (assignments per expert, before capacity)."""

    probs: torch.Tensor
    experts: torch.Tensor
    gates: torch.Tensor
    position: torch.Tensor
    keep: torch.Tensor
    chosen: torch.Tensor


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
    probs = logits.t().softmax(0).t()  # (N, E); over dim 0 of (E, N): 3x faster for small E
    top_p, experts = probs.max(-1, keepdim=True) if top_k == 1 else probs.topk(top_k, dim=-1)
    gates = top_p if top_k == 1 else top_p / top_p.sum(-1, keepdim=True)
    queue = experts.t().reshape(-1, 1)  # (k*N, 1): slot-major, then token order
    # each expert's running count of its assignments (not one_hot, whose range checks sync)
    seen = (queue == torch.arange(E, device=logits.device)).cumsum(0)  # (k*N, E)
    position = (seen.gather(1, queue) - 1).view(top_k, N).t()  # (N, k)
    keep = position < expert_capacity(N, E, top_k, capacity_factor)
    chosen = seen[-1] if N else seen.new_zeros(E)
    return Routing(probs, experts, gates, position, keep, chosen)


def load_balancing_loss(routing: Routing, weight: float = 1.0) -> torch.Tensor:
    """Switch's auxiliary loss ``E * sum_i f_i P_i`` (1 when uniform), times ``weight``: f_i the
    fraction of the N*k assignments (before capacity) sent to expert i (``routing.chosen``),
    P_i the mean router probability."""
    (N, E), probs = routing.probs.shape, routing.probs
    f = routing.chosen.to(probs.dtype) * (weight * E / (routing.experts.numel() * N))  # E f_i / N
    return probs.sum(0) @ f  # two small ops forward and back: this runs every step


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

    def run_experts(self, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """The experts on their token sets: ``x [E, W, C]`` holds expert e's ``counts[e]`` tokens
        first, then padding (copies of token 0); returns ``[E, W, C]`` (padded rows are never
        read)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        N, E, k = B * T, self.n_experts, self.top_k
        flat = x.reshape(N, C)
        # capacity bounds training batches; evaluation sends every token to its k experts
        factor = self.capacity_factor if self.training else 0
        r = route(self.router(flat), k, factor)
        self.aux_loss = load_balancing_loss(r, weight=self.aux_weight)
        counts = r.chosen.clamp(max=expert_capacity(N, E, k, factor))  # each its first ones
        if self.training:
            with torch.no_grad():
                self.routed += counts
                self.dropped += r.chosen - counts
        counts = counts.tolist()
        W = max(counts, default=0)
        if not W:
            return self.drop(flat.new_zeros(B, T, C))
        # each assignment's row in the experts' [E * W] rows; a dropped one (position >= W)
        # writes to a spare row E * W; padding rows hold token 0: nothing reads their results
        slot = torch.where(r.keep, r.position.add(r.experts, alpha=W), E * W).reshape(-1)
        token = slot.new_zeros(E * W + 1)
        ids = torch.arange(N, device=slot.device)
        token[slot] = ids if k == 1 else ids.repeat_interleave(k)  # each assignment's token
        dispatched = flat.index_select(0, token[:E * W]).view(E, W, C)
        out = self.run_experts(dispatched, counts).view(E * W, C)
        gates = r.gates * r.keep  # a dropped assignment reads the last row and adds nothing
        out = out.index_select(0, slot.clamp(max=E * W - 1)).view(N, k, C)
        y = (out * gates.unsqueeze(-1)).sum(1) if k > 1 else out.view(N, C) * gates
        return self.drop(y.view(B, T, C))

    def utilisation(self) -> dict:
        """Fractions of the training-time routing assignments each expert ran and dropped."""
        total = float(self.routed.sum() + self.dropped.sum())
        if total == 0:
            return {"assignments": 0, "share": [], "dropped_share": []}
        return {"assignments": int(total),
                "share": [float(v) / total for v in self.routed],
                "dropped_share": [float(v) / total for v in self.dropped]}


class StackedLinear(nn.Module):
    """E linear maps of one shape as two parameters, ``weight [E, out, in]`` and ``bias [E, out]``:
    ``[E, W, in] -> [E, W, out]`` in one batched product. Why not E ``nn.Linear``s: an optimizer
    step costs a few small ops per tensor (AdamW's default on a CPU loops over them), which
    at this size is most of what the extra experts cost. ``reset(e)`` draws expert e's slice as
    ``nn.Linear`` draws its parameters, so models seeded alike start alike."""

    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n, out_features))

    @torch.no_grad()
    def reset(self, e: int) -> None:
        nn.init.kaiming_uniform_(self.weight[e], a=math.sqrt(5))
        bound = 1 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.bias[e], -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))

    def one(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e's map alone, on ``[..., in]``."""
        return F.linear(x, self.weight[e], self.bias[e])


def _stack_old_keys(module: nn.Module, names: dict[str, str]):
    """Checkpoints from before the stacked parameters kept each expert's Linear as
    ``experts.{e}.{old}.weight``; they load stacked into ``{new}.weight``."""
    for old, new in names.items():
        for kind in ("weight", "bias"):
            stack_on_load(module, f"{new}.{kind}",
                          [f"experts.{e}.{old}.{kind}" for e in range(module.n_experts)])


class QuantumExpert(nn.Module):
    """One expert's VQC (its Linear(C -> n_inputs) and Linear(n_observables -> C) are slices
    of the layer's ``StackedLinear``s). The experts of a layer share one ``spec`` object (the
    stacking check compares by identity)."""

    def __init__(self, cfg, spec):
        super().__init__()
        self.vqc = make_vqc(cfg.quantum, spec=spec)


class QuantumMoE(MoEFFN):
    """``ffn="quantum_moe"``: E VQC experts of one circuit shape, simulated as one stacked call
    on the tokens routed to each (see the module docstring)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        spec, E, C = cfg.quantum.build_spec(), self.n_experts, cfg.n_embd
        self.down = StackedLinear(E, C, spec.n_inputs)
        self.up = StackedLinear(E, spec.n_observables, C)
        experts = []
        for e in range(E):  # each expert's draws in the order of one QuantumFFN's
            experts.append(QuantumExpert(cfg, spec))
            self.down.reset(e)
            self.up.reset(e)
        self.experts = nn.ModuleList(experts)
        _stack_old_keys(self, {"down": "down", "up": "up"})
        share_weights(self, "vqc_weights", [ex.vqc for ex in experts])

    def run_experts(self, x, counts):
        angles = self.down(x)  # (E, W, n_inputs)
        out = run_stacked([ex.vqc for ex in self.experts], angles, counts)  # (E, W, n_obs)
        return self.up(out)  # (E, W, C)

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e alone on tokens ``[..., C]`` (a reference for tests and notebooks)."""
        return self.up.one(e, self.experts[e].vqc(self.down.one(e, x)))


def run_stacked(layers: list[QuantumLayer], x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """``layers[e](x[e, :counts[e]])`` for every e, zero-padded back to ``[E, W, n_outputs]``.

    Args: ``x [E, W, n_inputs]``, expert e's tokens in its first ``counts[e]`` rows.
    Where the layers stack (``qllm.quantum_layer.stacked_forward``'s conditions: one spec, the
    native exact backend, no hooks), all E run as one ``simulate_stacked`` call on the padded
    tensor, and each layer's stats count its own ``counts[e]`` circuits, not the padding.
    Otherwise each non-empty set runs through its own layer (hooks see just the routed tokens)."""
    E, W = x.shape[:2]
    first = layers[0]
    if not all(_stacks_with(layer, first) for layer in layers):
        return torch.stack([F.pad(layer(x[e, :n]), (0, 0, 0, W - n)) if n
                            else x.new_zeros(W, layer.n_outputs)
                            for e, (layer, n) in enumerate(zip(layers, counts))])
    check_angles(x, "x", first.spec.n_inputs)
    return stacked_call(layers, x, counts)  # (E, W, n_observables)


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
    parameters), their layers stacked as the quantum experts' are."""

    def __init__(self, cfg):
        super().__init__(cfg)
        h, E, C = classical_expert_hidden(cfg), self.n_experts, cfg.n_embd
        self.fc, self.proj = StackedLinear(E, C, h), StackedLinear(E, h, C)
        for e in range(E):
            self.fc.reset(e)
            self.proj.reset(e)
        _stack_old_keys(self, {"0": "fc", "2": "proj"})

    def run_experts(self, x, counts):
        return self.proj(F.gelu(self.fc(x)))  # (E, W, C)

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e alone on tokens ``[..., C]``."""
        return self.proj.one(e, F.gelu(self.fc.one(e, x)))
