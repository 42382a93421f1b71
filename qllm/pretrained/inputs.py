"""Model inputs per split: token ids and masks, or, for head-only adapters, pooled backbone
features computed once and cached in memory (keyed by the backbone's weight hash, the data's
fingerprint and the tokenisation)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

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
                 progress: bool = False) -> dict[str, tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    """``{split: (inputs, labels)}``: inputs are ``(input_ids, attention_mask)`` (each (N, T)),
    or ``(features,)`` (N, hidden) for head-only adapters, taken from the cache when the same
    backbone, data and length were seen before in this process."""
    out = {}
    for split in SPLITS:
        y = torch.tensor(task.labels[split], dtype=torch.long)
        ids, mask = backbone.tokenize(task.texts[split], max_length)
        if not head_only:
            out[split] = ((ids, mask), y)
            continue
        key = (backbone.sha256, task.fingerprint(), max_length, split, len(y))
        if key not in _FEATURES:
            if len(_FEATURES) >= _CACHE_LIMIT:
                _FEATURES.pop(next(iter(_FEATURES)))
            _FEATURES[key] = pooled_features(backbone, ids, mask, progress=progress)
        out[split] = ((_FEATURES[key],), y)
    return out


def cache_info() -> dict:
    return {"entries": len(_FEATURES)}
