"""The native batched statevector backend (default): CPU or CUDA, exact gradients by autograd."""

from __future__ import annotations

import torch

from qllm.backends.base import Backend
from qllm.engine import simulate
from qllm.engine.estimate import estimate_bytes
from qllm.errors import BackendError
from qllm.memory import check_budget
from qllm.spec import CircuitSpec

STRATEGIES = ("auto", "fused", "gates")


class TorchBackend(Backend):
    """Options:
        strategy: "auto" (default), "fused" (fixed segments as one matrix product) or "gates".
        memory_budget_gb: refuse calls whose estimate exceeds this (default: half of free memory).
        shots: None (default) for exact expectation values, or a positive int: each sample's
            observables are estimated from ``shots`` draws per measurement setting
            (``qllm.engine.sampling``); no backprop then (use gradient="parameter-shift"/"spsa").
        seed: seed of the sampling ``torch.Generator`` (same seed, same counts); None draws one.
        noise: None, or a dict of ``qllm.engine.noise`` channels, e.g.
            ``{"depolarizing": 0.01, "amplitude_damping": 0.02, "readout": 0.03}``; gate noise is
            simulated exactly with a density matrix (small n). Exact noisy values keep backprop.
    """

    name = "torch"

    def __init__(self, strategy: str = "auto", memory_budget_gb: float | None = None,
                 shots: int | None = None, seed: int | None = None, noise=None):
        super().__init__()
        if strategy not in STRATEGIES:
            raise BackendError(f"strategy {strategy!r} is not one of {STRATEGIES}")
        self.strategy = strategy
        self.budget = None if memory_budget_gb is None else int(memory_budget_gb * 2**30)
        self.measurement = None
        if shots is not None or noise is not None:
            from qllm.engine.sampling import MeasuredSimulator

            self.measurement = MeasuredSimulator(shots, seed, noise)
            self.shots = shots
            self.supports_backprop = shots is None

    def estimate_bytes(self, spec: CircuitSpec, batch: int, dtype=torch.float32) -> int:
        return estimate_bytes(spec, batch, dtype, self.strategy, grad=torch.is_grad_enabled())

    def check_memory(self, spec, inputs):
        need = self.estimate_bytes(spec, inputs.shape[0], inputs.dtype)
        if self.measurement is not None:
            need = max(need, self.measurement.estimate_bytes(spec, inputs.shape[0], inputs.dtype))
        check_budget(need, f"simulating {spec.n_qubits} qubits for a batch of {inputs.shape[0]}",
                     "Lower n_qubits, the batch size (batch_size x seq_len tokens), or use float32.",
                     inputs.device, self.budget)

    def _expval(self, spec, inputs, weights):
        if self.measurement is not None:
            out, circuits = self.measurement.expval(spec, inputs, weights.to(inputs.device,
                                                                              inputs.dtype),
                                                    self.strategy)
            self.stats.add(circuits, shots=circuits * (self.shots or 0))
            return out
        out = simulate(spec, inputs, weights.to(inputs.device, inputs.dtype), self.strategy)
        self.stats.add(inputs.shape[0])
        return out
