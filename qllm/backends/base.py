"""The Backend interface: every backend maps (spec, inputs [B, n_inputs], shared weights) to
expectation values [B, n_observables] and records what it ran."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from qllm.spec import CircuitSpec
from qllm.validate import check_angles


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
    """Base class. Subclasses implement ``_expval`` and may override ``estimate_bytes``."""

    name = "base"
    supports_backprop = True  # gradients flow by autograd through _expval
    shots: int | None = None

    def __init__(self):
        self.stats = ExecutionStats()

    def expval(self, spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` for ``inputs [B, n_inputs]``.

        Validates both tensors, checks the memory budget, then runs ``_expval``.
        """
        check_angles(inputs, "inputs", spec.n_inputs)
        check_angles(weights, "weights", spec.n_weights)
        if inputs.dim() != 2:
            raise_shape(inputs)
        self.check_memory(spec, inputs)
        out = self._expval(spec, inputs, weights)
        return out

    def check_memory(self, spec: CircuitSpec, inputs: torch.Tensor) -> None:
        pass

    def _expval(self, spec, inputs, weights):  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def raise_shape(inputs):
    from qllm.errors import InputError

    raise InputError(f"inputs must have shape [B, n_inputs], got {tuple(inputs.shape)}")
