"""The native batched statevector backend (default): CPU or CUDA, exact gradients by autograd."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from qllm.backends.base import Backend
from qllm.backends.memory import budget_bytes, check_budget
from qllm.engine import simulate
from qllm.engine.estimate import estimate_bytes
from qllm.errors import BackendError
from qllm.spec import CircuitSpec
from qllm.validate import is_int

STRATEGIES = ("auto", "fused", "gates", "core", "kron", "pauli")


class TorchBackend(Backend):
    """Options:
        strategy: "auto" (default), "fused" (fixed segments as one matrix product), "gates",
            "core", "kron" or "pauli" (the dense, Kronecker or Heisenberg product-state core
            for quantum-FFN-shaped circuits; ``qllm.engine.simulate`` explains each).
        memory_budget_gb: refuse calls whose estimate exceeds this (default: half of free memory).
        shots: None (default) for exact expectation values, or a positive int: each sample's
            observables are estimated from ``shots`` draws per measurement setting
            (``qllm.engine.sampling``); no backprop then (use gradient="parameter-shift"/"spsa").
        seed: seed of the sampling ``torch.Generator`` (same seed, same counts); None draws one.
        noise: None, or a dict of ``qllm.engine.noise`` channels, e.g.
            ``{"depolarizing": 0.01, "amplitude_damping": 0.02, "readout": 0.03}``; gate noise is
            simulated exactly with a density matrix (small n). Exact noisy values keep backprop.
        cuda_graphs: replay each training call on CUDA (forward + backward) as two captured CUDA
            graphs (``qllm.engine.graphs``): much faster while kernel launches dominate (n <= 12);
            costs a capture per new batch shape and one step's memory per graph kept.
        chunk_size: None (default: the whole batch at once), a number of tokens, or "auto" (the
            whole batch if its estimate fits 90% of the memory budget, else the largest chunk
            that does; the 10% is headroom for the allocator's fragmentation). With autograd
            each chunk's forward is recomputed in the backward (``torch.utils.checkpoint``), so
            one chunk's activations are alive at a time: memory stays bounded at any batch size
            for the cost of a second forward. Exact values only (not with shots or noise).
    """

    name = "torch"

    def __init__(self, strategy: str = "auto", memory_budget_gb: float | None = None,
                 shots: int | None = None, seed: int | None = None, noise=None,
                 cuda_graphs: bool = False, chunk_size: int | str | None = None):
        super().__init__()
        from qllm.seeds import check_seed

        check_seed(seed, "seed", BackendError, allow_none=True)  # even unused: one rule
        if strategy not in STRATEGIES:
            raise BackendError(f"strategy {strategy!r} is not one of {STRATEGIES}")
        if not (chunk_size is None or chunk_size == "auto"
                or (is_int(chunk_size)
                    and chunk_size > 0)):
            raise BackendError(f"chunk_size must be None, 'auto' or a positive int, got {chunk_size!r}")
        if chunk_size is not None and (shots is not None or noise is not None):
            raise BackendError("chunk_size applies to exact simulation only (no shots or noise)")
        self.chunk_size = chunk_size
        self._chunk = None  # tokens per chunk of the current call (set by check_memory)
        self.strategy = strategy
        self.budget = None if memory_budget_gb is None else int(memory_budget_gb * 2**30)
        self.measurement = None
        self.graphs = None
        if cuda_graphs:
            from qllm.engine.graphs import GraphCache

            self.graphs = GraphCache()
        if shots is not None or noise is not None:
            from qllm.engine.sampling import MeasuredSimulator

            self.measurement = MeasuredSimulator(shots, seed, noise)
            self.shots = shots
            self.supports_backprop = shots is None

    # The shot sampler keeps one torch.Generator per device, made on first use (MeasuredSimulator
    # in qllm.engine.sampling, which exposes no state API of its own; hence ``_generators``).
    def rng_state(self) -> dict:
        if self.measurement is None:
            return {}
        return {"sampler": {device: g.get_state()
                            for device, g in self.measurement._generators.items()}}

    def set_rng_state(self, state: dict) -> None:
        if self.measurement is None:
            return
        for device, s in state.get("sampler", {}).items():  # a generator not made yet is made
            self.measurement.generator(torch.device(device)).set_state(s.cpu())

    def seed_rng(self, seed: int, path: str) -> None:
        if self.measurement is None:
            return
        from qllm.rng import derived_seed

        self.measurement.seed = derived_seed(seed, f"{path}.measurement")  # for later devices
        for g in self.measurement._generators.values():
            g.manual_seed(self.measurement.seed)

    def estimate_bytes(self, spec: CircuitSpec, batch: int, dtype=torch.float32) -> int:
        return estimate_bytes(spec, batch, dtype, self.strategy, grad=torch.is_grad_enabled())

    def chunk_for(self, spec: CircuitSpec, batch: int, dtype, device) -> int:
        """Tokens simulated at once for a batch of ``batch`` (see the chunk_size option)."""
        if self.chunk_size is None:
            return batch
        if self.chunk_size != "auto":
            return min(batch, self.chunk_size)
        budget = self.budget if self.budget is not None else budget_bytes(device)
        chunk = batch
        while chunk > 1 and self.estimate_bytes(spec, chunk, dtype) > 0.9 * budget:
            chunk = (chunk + 1) // 2
        return chunk

    def check_memory(self, spec, inputs):
        self._chunk = self.chunk_for(spec, inputs.shape[0], inputs.dtype, inputs.device)
        need = self.estimate_bytes(spec, self._chunk, inputs.dtype)
        if self.measurement is not None:
            need = max(need, self.measurement.estimate_bytes(spec, inputs.shape[0], inputs.dtype))
        if need <= (self.budget if self.budget is not None else budget_bytes(inputs.device)):
            return  # every call asks: the message is built only for a refusal
        what = f"a batch of {inputs.shape[0]}" + (f" in chunks of {self._chunk}"
                                                   if self._chunk < inputs.shape[0] else "")
        check_budget(need, f"simulating {spec.n_qubits} qubits for {what}",
                     "Lower n_qubits, the batch size (batch_size x seq_len tokens), use float32, "
                     "or the backend option chunk_size='auto'.",
                     inputs.device, self.budget)

    def _expval(self, spec, inputs, weights):
        if self.measurement is not None:
            out, circuits = self.measurement.expval(spec, inputs, weights.to(inputs.device,
                                                                              inputs.dtype),
                                                    self.strategy)
            self.stats.add(circuits, shots=circuits * (self.shots or 0))
            return out
        weights = weights.to(inputs.device, inputs.dtype)
        chunk = self._chunk or inputs.shape[0]
        if chunk >= inputs.shape[0]:
            run = self.graphs.simulate if self.graphs is not None else simulate
            out = run(spec, inputs, weights, self.strategy)
        elif torch.is_grad_enabled() and (inputs.requires_grad or weights.requires_grad):
            # recompute each chunk in the backward: one chunk's activations alive at a time
            out = torch.cat([checkpoint(simulate, spec, part, weights, self.strategy,
                                        use_reentrant=False) for part in inputs.split(chunk)])
        else:
            out = torch.cat([simulate(spec, part, weights, self.strategy)
                             for part in inputs.split(chunk)])
        self.stats.add(inputs.shape[0])
        return out
