"""Random-number state: save, restore and seed everything qllm draws from.

Two kinds of state:
- global generators (torch CPU and CUDA, numpy, Python ``random``): ``global_rng_state`` /
  ``set_global_rng_state`` store them as tensors and plain values, which
  ``torch.load(weights_only=True)`` accepts (numpy objects in a checkpoint break resume:
  transformers #40500); ``preserve_global_rng`` restores the caller's state on exit;
- private generators inside a model's quantum layers (shot samplers, SPSA directions, Aer job
  seeds): ``module_generators`` finds them, ``generator_states`` / ``set_generator_states`` save
  and restore them, ``seed_generators`` seeds each from one seed and its path.

>>> import torch
>>> before = torch.get_rng_state()
>>> with preserve_global_rng():
...     _ = torch.manual_seed(1), torch.rand(3)
>>> torch.equal(before, torch.get_rng_state())
True
"""

from __future__ import annotations

import contextlib
import random
import zlib
from collections.abc import Iterator

import numpy as np
import torch

# Attributes of a quantum layer that may own generators, and how deep to look inside them.
_MAX_DEPTH = 3


def global_rng_state() -> dict:
    """torch CPU (and CUDA, if available), numpy and Python RNG states as tensors / plain values."""
    np_state = np.random.get_state()
    py_version, py_keys, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "keys": torch.tensor(py_keys, dtype=torch.int64),
                   "gauss_next": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict) -> None:
    """Inverse of ``global_rng_state`` (state tensors may have been loaded onto a GPU)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = state["python"]
    random.setstate((p["version"], tuple(int(k) for k in p["keys"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])[:torch.cuda.device_count()]
        for i, s in enumerate(cuda):
            torch.cuda.set_rng_state(s.cpu(), i)


def seed_global(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def preserve_global_rng(device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block without changing the caller's torch, CUDA, numpy or Python RNG state."""
    device = torch.device(device)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


# -- generators owned by quantum layers ------------------------------------------------------
def _is_generator(obj) -> bool:
    return isinstance(obj, (torch.Generator, np.random.Generator))


def _owned_objects(obj, path: str, depth: int, seen: set) -> Iterator[tuple[str, object]]:
    """``(path, object)`` for ``obj`` and the qllm objects it holds (attributes, dict values)."""
    if id(obj) in seen or depth > _MAX_DEPTH:
        return
    seen.add(id(obj))
    yield path, obj
    for name, value in sorted(vars(obj).items()):
        if isinstance(value, torch.nn.Module):
            continue  # sub-modules are visited on their own
        if type(value).__module__.startswith("qllm") and hasattr(value, "__dict__"):
            yield from _owned_objects(value, f"{path}.{name}", depth + 1, seen)


def _owners(module: torch.nn.Module) -> list[tuple[str, object]]:
    """``(path, object)`` for every submodule and every qllm object it holds, each once."""
    seen: set = set()
    return [(path, obj) for mod_name, mod in module.named_modules()
            for path, obj in _owned_objects(mod, mod_name or "<root>", 0, seen)]


def module_generators(module: torch.nn.Module) -> dict[str, tuple[object, str, object]]:
    """Every private generator in ``module``'s submodules and the qllm objects they hold
    (backends, samplers, gradient functions): ``{path: (owner, key, generator)}``.

    ``key`` is an attribute name, or ``"attr[k]"`` for generators kept in a dict attribute.
    """
    found: dict[str, tuple[object, str, object]] = {}
    for path, obj in _owners(module):
        for name, value in sorted(vars(obj).items()):
            if _is_generator(value):
                found[f"{path}.{name}"] = (obj, name, value)
            elif isinstance(value, dict):
                for k, g in value.items():
                    if _is_generator(g):
                        found[f"{path}.{name}[{k}]"] = (obj, f"{name}[{k}]", g)
    return found


def _state_of(g) -> object:
    if isinstance(g, torch.Generator):
        return {"torch": g.get_state(), "device": str(g.device)}
    return {"numpy": g.bit_generator.state}


def generator_states(module: torch.nn.Module) -> dict:
    """``{path: state}`` of every private generator in ``module`` (tensors and plain values)."""
    return {path: _state_of(g) for path, (_, _, g) in module_generators(module).items()}


def set_generator_states(module: torch.nn.Module, states: dict) -> list[str]:
    """Restore states saved by ``generator_states``; generators that a saved state names but that
    do not exist yet (samplers create theirs on first use) are created. Returns the paths of
    saved states that matched nothing."""
    current = module_generators(module)
    owners = dict(_owners(module))
    unmatched = []
    for path, state in states.items():
        if path in current:
            owner, key, g = current[path]
        else:
            owner_path, _, key = path.rpartition(".")
            owner = owners.get(owner_path)
            attr, _, dict_key = key.partition("[")
            container = getattr(owner, attr, None) if owner is not None else None
            if not (dict_key and isinstance(container, dict) and "torch" in state):
                unmatched.append(path)
                continue
            g = container[dict_key[:-1]] = torch.Generator(state["device"])
        if "torch" in state:
            g.set_state(state["torch"].cpu())
        else:
            g.bit_generator.state = state["numpy"]
    return unmatched


def derived_seed(seed: int, path: str) -> int:
    """A seed for the generator at ``path``, fixed by ``seed`` and distinct per path."""
    return (int(seed) * 1_000_003 + zlib.crc32(path.encode())) % 2**63


def seed_generators(module: torch.nn.Module, seed: int) -> None:
    """Seed every private generator of ``module`` from ``seed`` and its path; owners with a
    ``seed`` attribute (samplers that create generators lazily) get the derived seed too."""
    for path, obj in _owners(module):
        s = derived_seed(seed, path)
        if (not isinstance(obj, torch.nn.Module) and "seed" in vars(obj)
                and (obj.seed is None or isinstance(obj.seed, int))):
            obj.seed = s
        for name, value in list(vars(obj).items()):
            if isinstance(value, torch.Generator):
                value.manual_seed(s)
            elif isinstance(value, np.random.Generator):
                setattr(obj, name, np.random.default_rng(s))
            elif isinstance(value, dict):
                for g in value.values():
                    if isinstance(g, torch.Generator):
                        g.manual_seed(s)
