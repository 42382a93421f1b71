"""Pooled backbone features on disk, so head-only adapters (``quantum_head``, ``linear_head``,
``mlp_head``) run the frozen backbone over a data set once, not once per run or per process.

One file per split, named by a sha256 of its key: the backbone's weight hash, the task's data
fingerprint, the split and its size, the max length and the pooling. Files are written
atomically (``qllm.results.atomic_write``), loaded with ``torch.load(weights_only=True)``, and a
file that cannot be read or does not hold what its key promises is ignored with a one-line
warning and rebuilt.

Folder: the ``cache_dir`` a caller passes (the bench uses ``<results>/peft/feature_cache``),
else ``$QLLM_FEATURE_CACHE`` (``off`` turns the disk cache off), else
``$XDG_CACHE_HOME/qllm/features`` (default ``~/.cache/qllm/features``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch

CACHE_ENV = "QLLM_FEATURE_CACHE"
FORMAT = "qllm-pooled-features-1"
POOLING = "mean"  # qllm.pretrained.backbones.mean_pool over the attention mask


def cache_folder(cache_dir: str | Path | None = None) -> Path | None:
    """The folder feature files live in, or None when the disk cache is off."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qllm" / "features"


def feature_key(backbone_sha256: str, fingerprint: str, split: str, n: int, max_length: int,
                hidden: int) -> dict:
    """Everything the cached features depend on (a JSON-able dict)."""
    return {"backbone_sha256": backbone_sha256, "data_fingerprint": fingerprint, "split": split,
            "n": n, "max_length": max_length, "pooling": POOLING, "hidden": hidden}


def feature_path(folder: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return folder / f"{digest[:32]}.pt"


def _problem(saved, key: dict) -> str | None:
    """Why a loaded file cannot be used (None: it can)."""
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        return "not a qllm feature file"
    if saved.get("key") != key:
        return "its key differs from the file name's"
    x = saved.get("features")
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (key["n"], key["hidden"]):
        return f"features are not a ({key['n']}, {key['hidden']}) tensor"
    if not bool(torch.isfinite(x).all()):
        return "features hold NaN or inf"
    return None


def load_features(folder: Path, key: dict) -> torch.Tensor | None:
    """The cached (N, hidden) features for ``key``, or None (missing, or corrupt: warned)."""
    path = feature_path(folder, key)
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        problem = _problem(saved, key)
    except Exception as e:  # truncated, garbage, or a pickle weights_only refuses
        problem = f"unreadable ({type(e).__name__})"
    if problem:
        warnings.warn(f"feature cache {str(path)!r} ignored and rebuilt: {problem}",
                      stacklevel=3)
        return None
    return saved["features"]


def save_features(folder: Path, key: dict, features: torch.Tensor) -> Path:
    """Write ``features`` for ``key`` atomically (a crash leaves the old file or none)."""
    from qllm.results import atomic_write

    payload = {"format": FORMAT, "key": key, "features": features.detach().cpu().contiguous()}
    return atomic_write(feature_path(folder, key), lambda f: torch.save(payload, f))
