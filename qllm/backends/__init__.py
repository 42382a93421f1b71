"""Backend registry: short names -> Backend factories.

>>> from qllm.backends import get_backend
>>> get_backend("torch").name
'torch'

Names: ``torch`` (native engine), ``pennylane:<device>`` (any PennyLane device), ``aer`` and
``aer:<fake_backend>`` (Qiskit Aer primitives, optionally with a fake IBM device's noise),
``ibm:<device>`` (qiskit-ibm-runtime SamplerV2 in Batch mode; ``ibm:fake_<name>`` offline).
"""

from __future__ import annotations

from collections.abc import Callable

from qllm.backends.base import Backend, ExecutionStats
from qllm.errors import BackendError


def _torch(device=None, **options):
    from qllm.backends.torch_backend import TorchBackend

    if device:
        raise BackendError(f"the torch backend takes no device suffix, got 'torch:{device}'")
    return TorchBackend(**options)


def _pennylane(device=None, **options):
    from qllm.backends.pennylane_backend import PennyLaneBackend

    return PennyLaneBackend(device or "default.qubit", **options)


def _aer(device=None, **options):
    from qllm.backends.aer_backend import AerBackend

    return AerBackend(device, **options)


def _ibm(device=None, **options):
    from qllm.backends.ibm_backend import IBMBackend

    return IBMBackend(device, **options)


BACKENDS: dict[str, Callable[..., Backend]] = {
    "torch": _torch,
    "pennylane": _pennylane,
    "aer": _aer,
    "ibm": _ibm,
}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Add a backend factory ``factory(device: str | None, **options) -> Backend``."""
    BACKENDS[name] = factory


def get_backend(name: str | Backend, **options) -> Backend:
    """Build a backend from ``"kind"`` or ``"kind:device"``; a Backend instance passes through."""
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str) or not name:
        raise BackendError(f"backend must be a name such as 'torch', got {name!r}")
    kind, _, device = name.partition(":")
    if kind not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; allowed: 'torch', 'pennylane:<device>', "
                           "'aer', 'aer:<fake_backend>', 'ibm:<device>'" + "".join(
                               f", {k!r}" for k in BACKENDS
                               if k not in ("torch", "pennylane", "aer", "ibm")))
    budget = options.pop("memory_budget_gb", None)  # every backend takes it (Backend.budget)
    try:
        backend = BACKENDS[kind](device or None, **options)
    except TypeError as e:
        raise BackendError(f"bad options for backend {name!r}: {e}") from None
    return backend.set_memory_budget(budget) if budget is not None else backend


__all__ = ["Backend", "ExecutionStats", "get_backend", "register_backend", "BACKENDS"]
