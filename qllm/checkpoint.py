"""Checkpoints that survive crashes and refuse to run code.

- Atomic writes through ``qllm.results.atomic_write`` (the writer results.json uses too): the
  checkpoint is written to a temporary file in the same folder, fsynced,
  ``os.replace``d over the target and the folder fsynced, so a SIGKILL mid-save leaves the last
  good checkpoint in place (Lightning #688). Temporaries of killed saves are swept by the next
  save; those of a live writer are left alone. A full disk raises one ``StorageError``.
- Contents are checked before writing: only tensors and plain values (dict, list, tuple, str,
  int, float, bool, None), so what was saved can always be loaded with ``weights_only=True``.
- Loading uses ``torch.load(weights_only=True)``: a crafted pickle cannot execute its payload.
  A missing, truncated, foreign or unsafe file raises ``CheckpointError`` naming the file, and
  so does one holding a NaN or inf tensor (naming the tensor): such weights would evaluate to a
  NaN loss.
- RNG states are stored as tensors and plain values (``qllm.rng``).

>>> import tempfile, torch
>>> path = save_checkpoint(tempfile.mkdtemp() + "/ckpt.pt", {"step": 3, "w": torch.ones(2)})
>>> load_checkpoint(path)["step"]
3
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from qllm.errors import CheckpointError
from qllm.results import atomic_write
from qllm.rng import global_rng_state, set_global_rng_state

FORMAT = "qllm-checkpoint-v1"
_PLAIN = (str, int, float, bool, type(None), torch.Size, torch.dtype, torch.device)


def rng_state() -> dict:
    """Global torch/CUDA/numpy/Python RNG states as tensors and plain values."""
    return global_rng_state()


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned."""
    set_global_rng_state(state)


def _check_plain(value, where: str) -> None:
    """Raise CheckpointError unless ``value`` holds only tensors and plain values."""
    if isinstance(value, torch.Tensor) or isinstance(value, _PLAIN):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise CheckpointError(f"checkpoint state {where} has a key of type "
                                      f"{type(k).__name__}; keys must be str or numbers")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"checkpoint state {where} is a {type(value).__module__}.{type(value).__name__}; only "
        "tensors and plain values (dict, list, tuple, str, int, float, bool, None) can be saved "
        "and later loaded with weights_only=True (convert numpy arrays with torch.as_tensor)")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Atomically write ``state`` (tensors and plain values) to ``path``.

    Args:
        path: the checkpoint file; its folder is created if needed.
        state: a dict of tensors and plain values (checked before anything is written).

    Returns:
        ``path`` as a Path.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise CheckpointError(f"checkpoint path must be a file path, got {path!r}")
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint path {str(path)!r} is a folder; give a file name")
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint state must be a dict, got {type(state).__name__}")
    _check_plain(state, "state")
    payload = {"format": FORMAT, **state}
    atomic_write(path, lambda f: torch.save(payload, f))
    return path


def _first_non_finite(value, where: str) -> str | None:
    """The path of the first float tensor in ``value`` holding NaN or inf, or None."""
    if isinstance(value, torch.Tensor):
        if (value.is_floating_point() or value.is_complex()) and value.numel() \
                and not bool(torch.isfinite(value).all()):
            return where
        return None
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, (list, tuple)) else ()
    for k, v in items:
        found = _first_non_finite(v, f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    require: tuple[str, ...] = ()) -> dict:
    """Load a qllm checkpoint safely.

    Args:
        path: the checkpoint file.
        map_location: where tensors go (``torch.load``'s ``map_location``).
        require: keys the checkpoint must hold (e.g. ``("model", "optimizer")``).

    Returns:
        The saved dict (with its ``"format"`` key).

    Raises:
        CheckpointError: naming the file, if it is missing, truncated, not a qllm checkpoint,
        holds objects other than tensors and plain values (a crafted pickle's payload never
        runs), or lacks a required key.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise CheckpointError(f"checkpoint path must be a file path, got {path!r}")
    if not (isinstance(require, (tuple, list)) and all(isinstance(k, str) for k in require)):
        raise CheckpointError(f"require must be a tuple of key names, got {require!r}")
    if isinstance(map_location, (str, torch.device)):
        try:
            torch.device(map_location)
        except RuntimeError:
            raise CheckpointError(f"map_location {map_location!r} is not a torch device name "
                                  "('cpu', 'cuda', 'cuda:0', ...)") from None
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} is not a file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, unsafe pickle, garbage
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be loaded safely (truncated, corrupt, or it holds "
            f"objects other than tensors and plain values): {type(e).__name__}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a qllm checkpoint "
                              f"(expected format {FORMAT!r})")
    bad = _first_non_finite(state, "")
    if bad:
        raise CheckpointError(f"checkpoint {str(path)!r} holds non-finite values (NaN or inf) in "
                              f"tensor {bad!r}; it cannot be evaluated or resumed (train again "
                              "from an earlier checkpoint, or with a lower lr)")
    missing = [k for k in require if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {missing}; it holds "
                              f"{sorted(k for k in state if k != 'format')}")
    return state


# Training settings that may differ between a run and its resumption: they do not change what is
# computed (the progress bar, the device the same arithmetic runs on).
RESUMABLE_CHANGES = ("progress", "device")


def check_same_config(path, what: str, saved: dict, now: dict, ignore=()) -> None:
    """A checkpoint resumes only the run that wrote it: refuse when ``saved`` and ``now`` (config
    dicts) differ in any field but ``ignore``, naming the fields."""
    diff = sorted(k for k in set(saved) | set(now)
                  if k not in ignore and saved.get(k) != now.get(k))
    if diff:
        raise CheckpointError(f"checkpoint {str(path)!r} was written by another {what} (fields "
                              f"{diff} differ); resume with the config it holds")


def stack_on_load(module: torch.nn.Module, new: str, old: list[str]) -> None:
    """A load_state_dict pre-hook on ``module``: a state dict holding every key of ``old``
    (relative to ``module``) gets them stacked into ``new``, for layouts from before several
    tensors became one (the quantum MoE's experts, attention's circuits)."""

    def hook(state_dict, prefix, *args):
        keys = [prefix + k for k in old]
        if all(k in state_dict for k in keys):
            state_dict[prefix + new] = torch.stack([state_dict.pop(k) for k in keys])

    module._register_load_state_dict_pre_hook(hook)
