"""Fake IBM devices by short name: ``"fake_manila"`` -> ``qiskit_ibm_runtime.fake_provider.FakeManilaV2()``,
``"fake_torino"`` -> ``FakeTorino()``. The one place fake backends are loaded and cached: the
``aer``, ``pennylane`` and ``ibm`` backends and the cost targets all come here.

The fake backends carry a real device's calibration snapshot (coupling map, native gates, gate and
readout errors, T1/T2) and work offline. 5-qubit ones load in well under a second; the 127-qubit
ones take ~10 s and the 133/156-qubit ones 15-25 s.

>>> from qllm.hardware.fake_devices import fake_backend
>>> fake_backend("fake_manila").num_qubits
5
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from qllm.errors import BackendError


def _snake(class_name: str) -> str:
    """``FakeManilaV2`` -> ``fake_manila``."""
    base = class_name.removesuffix("V2")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


@lru_cache(maxsize=1)
def _classes() -> dict[str, type]:
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    out = {}
    for attr in dir(fake_provider):
        cls = getattr(fake_provider, attr)
        # Newer snapshots (FakeTorino, FakeFez, ...) have no "V2" suffix: accept every subclass.
        if (isinstance(cls, type) and issubclass(cls, FakeBackendV2) and cls is not FakeBackendV2
                and attr.startswith("Fake")):
            out[_snake(attr)] = cls
    return out


def available_fake_backends() -> list[str]:
    """Every name ``fake_backend`` accepts, sorted: ``['fake_almaden', 'fake_armonk', ...]``."""
    return sorted(_classes())


def normalize_fake_name(name: str) -> str:
    """Accept ``fake_manila``, ``FakeManila``, ``FakeManilaV2``, ``manila``; return ``fake_manila``."""
    if not isinstance(name, str) or not name.strip():
        raise BackendError(f"a fake backend name must be a non-empty string, got {name!r}")
    key = name.strip()
    if key[:4].lower() == "fake" and not key.lower().startswith("fake_"):
        key = _snake(key)  # FakeManilaV2 / FakeManila
    key = key.lower()
    if not key.startswith("fake_"):
        key = "fake_" + key
    return key


def is_fake_name(name) -> bool:
    """True when ``name`` is a string naming a known fake backend."""
    try:
        return normalize_fake_name(name) in _classes()
    except BackendError:
        return False


@cache  # the 100+ qubit snapshots take seconds: load each once
def _load(key: str):
    return _classes()[key]()


def fake_backend(name: str):
    """A ``qiskit_ibm_runtime`` fake backend (BackendV2) by name; cached per name.

    Args:
        name: e.g. ``"fake_manila"`` (also ``"FakeManilaV2"``, ``"manila"``).

    Returns:
        The fake backend instance (shared: do not mutate it).

    Raises:
        BackendError: unknown name; the message lists every available name.
    """
    key = normalize_fake_name(name)
    if key not in _classes():
        raise BackendError(f"unknown fake backend {name!r}; available: "
                           f"{', '.join(available_fake_backends())}")
    return _load(key)


def fake_noise_model(name: str):
    """``qiskit_aer.noise.NoiseModel.from_backend`` of a fake backend (gate, readout, thermal)."""
    from qiskit_aer.noise import NoiseModel

    return NoiseModel.from_backend(fake_backend(name))
