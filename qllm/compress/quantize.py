"""Angle quantization to k bits: a uniform grid of 2^k angles over each gate's period.

Post-training: every trained angle moves to the nearest grid point (an error of at most half a
step, period / 2^(k+1)); angles that land on 0 are then exact identities, which pruning removes.
Quantization-aware fine-tuning: the circuit's weights pass through a straight-through estimator
(forward: the rounded angle; backward: the identity), registered as a torch parametrization on
each ``QuantumLayer.weights``, for a given number of optimizer steps.

Every angle change is bounded like a pruned gate's: ``||G(θ) - G(θ_q)||`` per gate, and twice
their sum per expectation value.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from qllm.compress.prune import MULTI_PERIODS, PERIODS, PruneResult, WorkOp
from qllm.errors import ConfigError
from qllm.gates import gate
from qllm.validate import is_int

MAX_BITS = 16


def check_bits(bits) -> int:
    """``bits``: an int in 1..16."""
    if not is_int(bits) or not 1 <= bits <= MAX_BITS:
        raise ConfigError(f"bits must be an int in 1..{MAX_BITS}, got {bits!r}")
    return bits


def period_of(name: str) -> float | None:
    """The period of every angle of a gate (up to a global phase), or None if not quantizable."""
    return PERIODS.get(name, MULTI_PERIODS.get(name))


def quantize_angle(angle: float, period: float, bits: int) -> float:
    step = period / 2 ** bits
    return round(angle / step) * step


def quantize_ops(ops: list[WorkOp], bits: int, result: PruneResult) -> list[WorkOp]:
    """Round every fixed angle to the k-bit grid of its gate's period (in place); adds each
    gate's ``||G(θ) - G(θ_q)||`` (times 2) to ``result.error_bound``."""
    check_bits(bits)
    for op in ops:
        period = period_of(op.gate)
        if period is None or not op.fixed or not op.angles:
            continue
        before = list(op.angles)
        op.angles = [quantize_angle(a, period, bits) for a in before]
        result.error_bound += 2 * _gate_distance(op.gate, before, op.angles)
    return ops


def _gate_distance(name: str, a: list, b: list) -> float:
    g = gate(name)
    m = g.matrix(torch.tensor([a, b], dtype=torch.float64))
    return float(torch.linalg.matrix_norm(m[0] - m[1], ord=2))


class RoundSTE(torch.autograd.Function):
    """Round to a grid in the forward pass; pass the gradient through unchanged (Bengio et al.,
    2013; as QuantumNAT and CompVQC train quantized angles)."""

    @staticmethod
    def forward(ctx, x, step):
        return torch.round(x / step) * step

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class AngleQuantizer(nn.Module):
    """A parametrization: weights -> weights on the grid ``steps`` (one step per weight)."""

    def __init__(self, steps: torch.Tensor):
        super().__init__()
        self.register_buffer("steps", steps)

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return RoundSTE.apply(weights, self.steps.to(weights.dtype))


def weight_steps(spec, bits: int) -> torch.Tensor:
    """Grid step of each weight of a canonical spec (each weight drives one angle, scale 1);
    weights of unquantizable gates get step 0 (left as they are)."""
    steps = torch.zeros(spec.n_weights, dtype=torch.float64)
    for op in spec.ops:
        period = period_of(op.gate)
        for p in op.params:
            if p.kind == "weight" and period is not None:
                steps[p.indices[0]] = period / 2 ** bits / abs(p.scale)
    return steps


def attach_ste(layer, bits: int) -> None:
    """Quantize ``layer.weights`` with a straight-through estimator until ``detach_ste``."""
    steps = weight_steps(layer.spec, check_bits(bits))
    if bool((steps == 0).any()):  # a zero step has no grid to round to
        raise ConfigError(f"layer {layer.spec.name!r} has weights on gates without a period; "
                          "cannot quantize them")
    parametrize.register_parametrization(layer, "weights", AngleQuantizer(steps.float()))


def detach_ste(layer) -> None:
    """Remove the estimator, keeping the quantized weights."""
    if parametrize.is_parametrized(layer, "weights"):
        parametrize.remove_parametrizations(layer, "weights", leave_parametrized=True)
