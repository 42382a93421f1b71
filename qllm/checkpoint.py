"""Checkpoints that survive crashes and refuse to run code.

- Atomic writes: a temporary file in the same folder, flushed and fsynced, then ``os.replace``d
  over the target, so a SIGKILL mid-save leaves the last good checkpoint in place.
- Loading uses ``torch.load(weights_only=True)``: a crafted pickle cannot execute its payload.
- RNG states (torch CPU/CUDA, numpy, Python) are stored as tensors and plain values, which
  ``weights_only`` accepts (numpy objects in a checkpoint break resume: transformers #40500).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from qllm.errors import CheckpointError

FORMAT = "qllm-checkpoint-v1"


def rng_state() -> dict:
    np_state = np.random.get_state()
    py_version, py_keys, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "keys": torch.tensor(py_keys, dtype=torch.int64),
                   "gauss_next": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(k) for k in p["keys"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Atomically write ``state`` (plain values and tensors) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a qllm checkpoint safely; errors name the file and say what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, unsafe pickle, garbage
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be loaded safely (truncated, corrupt, or it holds "
            f"objects other than tensors and plain values): {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a qllm checkpoint "
                              f"(expected format {FORMAT!r})")
    return state
