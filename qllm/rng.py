"""Random-number state: save, restore and seed everything qllm draws from.

- global generators (torch CPU and CUDA, numpy, Python ``random``): ``global_rng_state`` /
  ``set_global_rng_state`` store them as tensors and plain values, which
  ``torch.load(weights_only=True)`` accepts (numpy objects in a checkpoint break resume:
  transformers #40500); ``preserve_global_rng`` restores the caller's state on exit;
- ``derived_seed``: the seed of one private generator (shot sampler, SPSA directions, Aer job
  seeds), fixed by the run's seed and the generator's place in the model. Their states travel
  in ``QuantumLayer.state_dict()``; ``qllm.layer_rng`` seeds and collects them per layer.

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


def derived_seed(seed: int, path: str) -> int:
    """A seed for the generator at ``path``, fixed by ``seed`` and distinct per path."""
    return (int(seed) * 1_000_003 + zlib.crc32(path.encode())) % 2**63
