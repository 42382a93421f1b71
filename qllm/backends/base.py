"""The Backend interface: every backend maps (spec, inputs [B, n_inputs], shared weights) to
expectation values [B, n_observables] and records what it ran."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from qllm.backends.memory import check_budget
from qllm.errors import BackendError
from qllm.spec import CircuitSpec
from qllm.validate import all_finite, check_angles, is_real


@dataclass
class ExecutionStats:
    """What a backend ran: circuits (one per parameter set), shots and jobs (submissions)."""

    circuits: int = 0
    shots: int = 0
    jobs: int = 0

    def add(self, circuits: int, shots: int = 0, jobs: int = 1) -> None:
        self.circuits += circuits
        self.shots += shots
        self.jobs += jobs

    def reset(self) -> None:
        self.circuits = self.shots = self.jobs = 0

    def as_dict(self) -> dict:
        return asdict(self)


class Backend:
    """Base class. Subclasses implement ``_expval`` and may override ``estimate_bytes``.

    Memory guard: ``expval`` estimates the bytes a call needs (``estimate_bytes``) and raises
    ``MemoryBudgetError`` before allocating when that exceeds the budget: ``self.budget`` bytes
    (the ``memory_budget_gb`` option of every backend, see ``set_memory_budget``), else
    ``QLLM_MEMORY_BUDGET_GB``, else half of the free RAM (or GPU memory for CUDA inputs).
    """

    name = "base"
    supports_backprop = True  # gradients flow by autograd through _expval
    shots: int | None = None
    budget: int | None = None  # bytes; None: QLLM_MEMORY_BUDGET_GB or half of free memory

    def __init__(self):
        self.stats = ExecutionStats()

    def expval(self, spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` for ``inputs [B, n_inputs]``.

        Validates both tensors, checks the memory budget, then runs ``_expval``.
        """
        check_angles(inputs, "inputs", spec.n_inputs)
        if torch.is_tensor(weights) and weights.device != inputs.device:
            from qllm.errors import InputError

            raise InputError(f"weights are on {weights.device} but inputs on {inputs.device}; "
                             "move both to one device")
        check_angles(weights, "weights", spec.n_weights)
        if inputs.dim() != 2:
            raise_shape(inputs)
        if inputs.shape[0] == 0:  # nothing to run; keep the graph so backward() still works
            return inputs.new_zeros(0, spec.n_observables) + (inputs.sum() + weights.sum()) * 0
        self.check_memory(spec, inputs)
        return self.check_output(self._expval(spec, inputs, weights), inputs, weights)

    def check_output(self, out: torch.Tensor, inputs: torch.Tensor, weights: torch.Tensor):
        """``out``, or an InputError when finite angles gave non-finite values (an overflow)."""
        if not all_finite(out):
            from qllm.errors import InputError

            raise InputError(
                f"{self.name}: the circuit produced non-finite values for finite inputs: an angle "
                f"overflowed (largest |inputs| {float(inputs.abs().max()):.3g}, |weights| "
                f"{float(weights.abs().max()) if weights.numel() else 0.0:.3g}); rescale the inputs")
        return out

    def set_memory_budget(self, memory_budget_gb: float | None) -> Backend:
        """Refuse calls whose estimate exceeds ``memory_budget_gb`` GiB (None: the default)."""
        if memory_budget_gb is not None and (
                not is_real(memory_budget_gb)
                or not math.isfinite(memory_budget_gb) or memory_budget_gb <= 0):
            raise BackendError(f"memory_budget_gb must be a number > 0 (GiB) or None, got "
                               f"{memory_budget_gb!r}")
        self.budget = None if memory_budget_gb is None else int(memory_budget_gb * 2**30)
        return self

    def estimate_bytes(self, spec: CircuitSpec, batch: int, dtype=torch.float32) -> int:
        """Bytes one call needs. Default, for simulators outside qllm (PennyLane, Aer): complex128
        statevectors, one per sample for simulators that broadcast over the batch (PennyLane), one
        per worker for those that loop over it (``max_parallel_threads``, Aer), a copy per op when
        differentiating by backprop; density-matrix methods hold 2^n x 2^n matrices instead."""
        dim = 2**spec.n_qubits
        workers = getattr(self, "max_parallel_threads", None)
        states = max(1, batch) if not isinstance(workers, int) else max(1, min(batch, workers))
        method = str(getattr(self, "method", "")) + str(getattr(self, "device_name", ""))
        if "density" in method or "mixed" in method:
            return 16 * dim * dim * 4 * states
        copies = 4 + (len(spec.ops) if torch.is_grad_enabled() and self.supports_backprop else 0)
        return 16 * dim * states * copies

    def check_memory(self, spec: CircuitSpec, inputs: torch.Tensor) -> None:
        """Raise MemoryBudgetError (estimate, budget and how to lower it) before allocating."""
        need = self.estimate_bytes(spec, inputs.shape[0], inputs.dtype)
        check_budget(need, f"{self.name}: simulating {spec.n_qubits} qubits for a batch of "
                     f"{inputs.shape[0]}", "Lower n_qubits or the batch size (batch_size x "
                     "seq_len tokens), or raise memory_budget_gb / QLLM_MEMORY_BUDGET_GB.",
                     inputs.device, self.budget)

    # -- private generators: a QuantumLayer saves them in its state_dict -------------------
    def rng_state(self) -> dict:
        """The states of this backend's private generators (tensors and plain values, so a
        checkpoint loads with ``weights_only=True``); ``{}`` when it has none."""
        return {}

    def set_rng_state(self, state: dict) -> None:
        """Restore what ``rng_state`` returned. Entries for generators this backend does not
        have are skipped: weights may move between backends (exact to shots, native to Aer)."""

    def seed_rng(self, seed: int, path: str) -> None:
        """Reseed every private generator from ``seed`` and ``path`` (where the backend sits in
        the model, e.g. ``"blocks.0.ffn.vqc.backend"``): one stream per place,
        ``qllm.rng.derived_seed``."""

    def _expval(self, spec, inputs, weights):  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def raise_shape(inputs):
    from qllm.errors import InputError

    raise InputError(f"inputs must have shape [B, n_inputs], got {tuple(inputs.shape)}")
