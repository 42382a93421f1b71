"""Model inputs per split: token ids and masks, or, for head-only adapters, pooled backbone
features computed once and cached, in memory and on disk (``qllm.pretrained.feature_cache``),
keyed by the backbone's weight hash, the data's fingerprint, the max length and the pooling."""

from __future__ import annotations

import warnings

import torch
from tqdm.auto import tqdm

from qllm.pretrained import feature_cache
from qllm.pretrained.backbones import Backbone, mean_pool
from qllm.pretrained.tasks import SPLITS, TextTask

_FEATURES: dict[tuple, torch.Tensor] = {}
_CACHE_LIMIT = 32  # feature tensors kept (each N x hidden floats: small)


def subset(task: TextTask, max_train: int) -> TextTask:
    """The task with only its first ``max_train`` training examples (0: all)."""
    if not max_train or max_train >= len(task.labels["train"]):
        return task
    texts = {**task.texts, "train": task.texts["train"][:max_train]}
    labels = {**task.labels, "train": task.labels["train"][:max_train]}
    return TextTask(task.name, texts, labels, task.classes)


@torch.no_grad()
def pooled_features(backbone: Backbone, ids: torch.Tensor, mask: torch.Tensor,
                    batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Mean-pooled last hidden states of the frozen backbone: (N, hidden), no autograd."""
    out = []
    for i in tqdm(range(0, len(ids), batch_size), desc="backbone features", leave=False,
                  disable=not progress):
        h = backbone.model(input_ids=ids[i:i + batch_size],
                           attention_mask=mask[i:i + batch_size]).last_hidden_state
        out.append(mean_pool(h, mask[i:i + batch_size]))
    return torch.cat(out) if out else torch.empty(0, backbone.hidden_size)


def split_inputs(backbone: Backbone, task: TextTask, max_length: int, head_only: bool,
                 progress: bool = False, cache_dir=None
                 ) -> dict[str, tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    """``{split: (inputs, labels)}``: inputs are ``(input_ids, attention_mask)`` (each (N, T)),
    or ``(features,)`` (N, hidden) for head-only adapters, taken from the cache when the same
    backbone, data and length were seen before (in this process, or on disk in
    ``feature_cache.cache_folder(cache_dir)``)."""
    out = {}
    for split in SPLITS:
        y = torch.tensor(task.labels[split], dtype=torch.long)
        ids, mask = backbone.tokenize(task.texts[split], max_length)
        if not head_only:
            out[split] = ((ids, mask), y)
            continue
        key = feature_cache.feature_key(backbone.sha256, task.fingerprint(), split, len(y),
                                        max_length, backbone.hidden_size)
        memo = tuple(sorted(key.items()))
        if memo not in _FEATURES:
            if len(_FEATURES) >= _CACHE_LIMIT:
                _FEATURES.pop(next(iter(_FEATURES)))
            _FEATURES[memo] = _disk_features(backbone, ids, mask, key, cache_dir, progress)
        out[split] = ((_FEATURES[memo],), y)
    return out


def _disk_features(backbone, ids, mask, key, cache_dir, progress) -> torch.Tensor:
    """The features of ``key`` from the disk cache, else computed and written there."""
    from qllm.errors import StorageError

    folder = feature_cache.cache_folder(cache_dir)
    x = feature_cache.load_features(folder, key) if folder is not None else None
    if x is None:
        x = pooled_features(backbone, ids, mask, progress=progress)
        if folder is not None:
            try:
                feature_cache.save_features(folder, key, x)
            except StorageError as e:  # a read-only or full disk costs speed, not the run
                warnings.warn(f"feature cache not written: {e}", stacklevel=3)
    return x


def clear_memory_cache() -> None:
    """Forget the in-memory features (the disk cache stays)."""
    _FEATURES.clear()


def cache_info() -> dict:
    return {"entries": len(_FEATURES)}
