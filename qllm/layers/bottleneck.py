"""The ``bottleneck`` control: the quantum sublayers with each circuit replaced by a classical map
of the same shape (n_inputs -> n_observables), bounded like expectation values (tanh, in
[-1, 1]) and with no more parameters than the circuit has weights. If a hybrid ties with it, the
circuit is worth no more than any small bounded map in its place.

- BottleneckMap: tanh(W x + b), or tanh(U V x + b) at the largest rank that fits the budget.
- BottleneckFFN: Linear(C -> n_inputs) -> BottleneckMap -> Linear(n_observables -> C).
- BottleneckAttention: QuantumAttention's shape, one map per head for each of q, k and v.
"""

from __future__ import annotations

import torch
from torch import nn

from qllm.errors import ConfigError
from qllm.layers.projected import ProjectedAttention, ProjectedFFN


def _shape_options(n_in: int, n_out: int):
    """(rank or None for a full matrix, bias) -> parameter count, every shape the map can take."""
    for bias in (True, False):
        yield (None, bias), n_in * n_out + (n_out if bias else 0)
        for rank in range(1, min(n_in, n_out)):
            yield (rank, bias), rank * (n_in + n_out) + (n_out if bias else 0)


class BottleneckMap(nn.Module):
    """A bounded classical map ``[..., n_inputs] -> [..., n_outputs]`` with at most ``budget``
    parameters: the shape with the most parameters within the budget wins (a full matrix beats
    a factored one of the same count; a bias beats none).

    Args:
        n_inputs / n_outputs: the circuit's input angles and observables.
        budget: the circuit's weight count.
    Raises:
        ConfigError: not even a rank-1 map without bias fits.
    """

    def __init__(self, n_inputs: int, n_outputs: int, budget: int):
        super().__init__()
        fits = [(n, rank is None, bias, rank or 0)
                for (rank, bias), n in _shape_options(n_inputs, n_outputs) if n <= budget]
        if not fits:
            raise ConfigError(f"bottleneck: no map {n_inputs} -> {n_outputs} has <= {budget} "
                              f"parameters (the circuit's weights); the smallest needs "
                              f"{n_inputs + n_outputs}")
        _, full, bias, rank = max(fits)
        rank = None if full else rank
        self.n_inputs, self.n_outputs, self.rank = n_inputs, n_outputs, rank
        width = n_inputs if rank is None else rank
        self.factor = None if rank is None else nn.Linear(n_inputs, rank, bias=False)
        self.out = nn.Linear(width, n_outputs, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.factor is None else self.factor(x)
        return torch.tanh(self.out(h))


def bottleneck_for(qcfg) -> BottleneckMap:
    """The bottleneck map standing in for the circuit ``qcfg`` (a QuantumConfig) builds."""
    spec = qcfg.build_spec()
    return BottleneckMap(spec.n_inputs, spec.n_observables, spec.n_weights)


class BottleneckFFN(ProjectedFFN):
    core_name = "map"

    def __init__(self, cfg):
        super().__init__(cfg, bottleneck_for(cfg.quantum))


class BottleneckAttention(ProjectedAttention):
    core_name = "maps"

    def __init__(self, cfg):
        super().__init__(cfg, [bottleneck_for(cfg.quantum) for _ in range(3 * cfg.n_head)])

    def run_cores(self, angles: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(angles[:, :, h]) for h, m in enumerate(self.maps)], 2)
