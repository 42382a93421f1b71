"""Multimodal sequences: several input streams (image patches as float features, text as token
ids) joined into one sequence for one transformer.

A model config lists its streams (``ModelConfig.streams``), each a dict::

    {"name": "image", "kind": "features", "length": 16, "dim": 4}
    {"name": "text", "kind": "tokens", "length": 5, "vocab_size": 15}

A batch is *packed* into one float tensor ``(B, T, D)``: the streams one after another along T
(``T`` = the sum of the lengths), a feature stream in its first ``dim`` columns, a token stream's
ids in column 0 (exact in float32), every other column zero. ``pack_streams`` builds it from a
dict of tensors and says which stream is wrong when shapes do not match. Packing keeps every
batch one tensor, so the training loop, checkpoints and cost report are unchanged.

``MultiModalEmbedding``: per stream a ``Linear(dim, C)`` or ``Embedding(vocab, C)``, plus a
learned modality embedding (one vector per stream, added at each of its positions).

``digits_questions``: the built-in task ``digits_qa``: an 8x8 digit and a question about it
("what is this ?", "what comes after ?", "what comes before ?"); the answer, one of 10 digits,
needs both the image and the text.
"""

from __future__ import annotations

import torch
from torch import nn

from qllm.errors import ConfigError, InputError
from qllm.validate import is_int

STREAM_KINDS = ("features", "tokens")
# digits_qa: the question names an offset; the answer is (digit + offset) mod 10.
QA_QUESTIONS = {("what", "is", "this", "?"): 0, ("what", "comes", "after", "?"): 1,
                ("what", "comes", "before", "?"): -1}
QA_VOCAB = ["<pad>", "what", "is", "this", "comes", "after", "before", "?"]

def packed_width(streams: list) -> int:
    """Columns D of a packed batch: the widest feature stream (at least 1, for token ids)."""
    return max([s["dim"] for s in streams if s["kind"] == "features"] + [1])


def check_streams(streams, input_dim) -> None:
    """Validate ``ModelConfig.streams``; ``input_dim`` must be their packed width."""
    if not isinstance(streams, list) or len(streams) < 2:
        raise ConfigError(f"streams must be a list of at least 2 stream dicts, got {streams!r}")
    names = set()
    for i, s in enumerate(streams):
        if not isinstance(s, dict) or s.get("kind") not in STREAM_KINDS:
            raise ConfigError(f"streams[{i}] must be a dict with kind one of {STREAM_KINDS}, "
                              f"got {s!r}")
        need = {"name", "kind", "length", "dim" if s["kind"] == "features" else "vocab_size"}
        if set(s) != need:
            raise ConfigError(f"streams[{i}] ({s.get('name')!r}) must have exactly the keys "
                              f"{sorted(need)}, got {sorted(s)}")
        for key in need - {"name", "kind"}:
            v = s[key]
            if not is_int(v) or v < 1:
                raise ConfigError(f"streams[{i}] ({s['name']!r}): {key} must be an int >= 1, "
                                  f"got {v!r}")
        if s["name"] in names:
            raise ConfigError(f"streams: name {s['name']!r} appears twice")
        names.add(s["name"])
    if input_dim != packed_width(streams):
        raise ConfigError(f"input_dim={input_dim} must equal the streams' packed width "
                          f"{packed_width(streams)} (the widest feature stream)")


def pack_streams(streams: list, tensors: dict) -> torch.Tensor:
    """``{name: tensor}`` -> one packed float tensor ``(B, T, D)``.

    Args:
        streams: ``ModelConfig.streams``.
        tensors: a feature stream's ``(B, length, dim)`` floats, a token stream's ``(B, length)``
            integer ids.
    """
    if not isinstance(tensors, dict) or set(tensors) != {s["name"] for s in streams}:
        got = sorted(tensors) if isinstance(tensors, dict) else type(tensors).__name__
        raise InputError(f"streams: need one tensor per stream {[s['name'] for s in streams]}, "
                         f"got {got}")
    batch = {t.shape[0] if t.dim() else None for t in tensors.values()}
    if len(batch) != 1:
        raise InputError(f"streams: batch sizes differ: "
                         f"{ {k: tuple(v.shape) for k, v in tensors.items()} }")
    B, D = batch.pop(), packed_width(streams)
    parts = []
    for s in streams:
        t = tensors[s["name"]]
        if s["kind"] == "features":
            if tuple(t.shape) != (B, s["length"], s["dim"]) or not t.is_floating_point():
                raise InputError(f"stream {s['name']!r}: need float features of shape "
                                 f"{(B, s['length'], s['dim'])}, got {tuple(t.shape)} {t.dtype}")
            part = torch.zeros(B, s["length"], D)
            part[..., :s["dim"]] = t
        else:
            if tuple(t.shape) != (B, s["length"]) or t.is_floating_point():
                raise InputError(f"stream {s['name']!r}: need integer token ids of shape "
                                 f"{(B, s['length'])}, got {tuple(t.shape)} {t.dtype}")
            _check_ids(t, s)
            part = torch.zeros(B, s["length"], D)
            part[..., 0] = t.float()
        parts.append(part)
    return torch.cat(parts, 1)


def _check_ids(ids: torch.Tensor, s: dict) -> None:
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= s["vocab_size"]):
        raise InputError(f"stream {s['name']!r}: token ids must lie in [0, {s['vocab_size']}), "
                         f"got [{int(ids.min())}, {int(ids.max())}]")


def spans(streams: list) -> list[tuple[int, int]]:
    """``[(start, stop)]`` of each stream along the joined sequence."""
    out, t = [], 0
    for s in streams:
        out.append((t, t + s["length"]))
        t += s["length"]
    return out


class MultiModalEmbedding(nn.Module):
    """Packed ``(B, T, D)`` -> ``(B, T, n_embd)``: each stream's own embedding plus a learned
    modality vector."""

    def __init__(self, cfg):
        super().__init__()
        self.streams = cfg.streams
        self.spans = spans(cfg.streams)
        self.embeds = nn.ModuleList(
            nn.Linear(s["dim"], cfg.n_embd) if s["kind"] == "features"
            else nn.Embedding(s["vocab_size"], cfg.n_embd) for s in cfg.streams)
        self.modality = nn.Embedding(len(cfg.streams), cfg.n_embd)
        ids = torch.cat([torch.full((b - a,), i) for i, (a, b) in enumerate(self.spans)])
        self.register_buffer("modality_ids", ids, persistent=False)

    def check(self, x: torch.Tensor) -> None:
        """InputError naming the stream when a packed batch does not fit the streams."""
        T = self.spans[-1][1]
        if x.shape[1] != T:
            lengths = ", ".join(f"{s['name']}: {s['length']}" for s in self.streams)
            raise InputError(f"x must hold the joined streams, {T} positions ({lengths}), "
                             f"got {x.shape[1]}")
        for s, (a, b) in zip(self.streams, self.spans):
            if s["kind"] == "tokens":
                ids = x[:, a:b, 0]
                if not bool((ids == ids.round()).all()):
                    raise InputError(f"stream {s['name']!r}: column 0 must hold integer token "
                                     "ids (pack batches with qllm.multimodal.pack_streams)")
                _check_ids(ids.long(), s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for s, (a, b), emb in zip(self.streams, self.spans, self.embeds):
            chunk = x[:, a:b]
            parts.append(emb(chunk[..., :s["dim"]]) if s["kind"] == "features"
                         else emb(chunk[..., 0].long()))
        return torch.cat(parts, 1) + self.modality(self.modality_ids)  # (B, T, C)

    def example_input(self, seq_len: int | None = None) -> torch.Tensor:
        """A valid packed batch of one (random features, random ids; seeded)."""
        g = torch.Generator().manual_seed(0)
        tensors = {s["name"]: torch.rand(1, s["length"], s["dim"], generator=g)
                   if s["kind"] == "features"
                   else torch.randint(s["vocab_size"], (1, s["length"]), generator=g)
                   for s in self.streams}
        return pack_streams(self.streams, tensors).to(self.modality.weight.device)


def digits_questions(images, questions: int = 2, seed: int = 0) -> dict:
    """The ``digits_qa`` task's fields from the ``digits`` task (a TaskData).

    Each image is paired with ``questions`` different questions, drawn at random from "what is
    this ?", "what comes after ?" and "what comes before ?"; the answer (10 classes) is the
    digit, the next or the previous one (mod 10). Neither stream answers alone: the image leaves
    three candidates, the question ten.

    Returns:
        a dict of TaskData fields (packed ``x``, ``y``, streams).
    """
    n_q = len(QA_QUESTIONS)
    if not is_int(questions) or not 1 <= questions <= n_q:
        raise ConfigError(f"questions must be an int in 1..{n_q} (per image), got {questions!r}")
    g = torch.Generator().manual_seed(seed)
    index = {w: i for i, w in enumerate(QA_VOCAB)}
    texts = list(QA_QUESTIONS)
    ids = torch.tensor([[index[w] for w in t] for t in texts])  # (n_q, L)
    offsets = torch.tensor([QA_QUESTIONS[t] for t in texts])
    streams = [{"name": "image", "kind": "features", "length": images.seq_len,
                "dim": images.input_dim},
               {"name": "text", "kind": "tokens", "length": ids.shape[1],
                "vocab_size": len(QA_VOCAB)}]

    def build(x, y):
        pick = torch.stack([torch.randperm(n_q, generator=g)[:questions] for _ in y])  # (N, q)
        pick = pick.T.reshape(-1)  # question j of every image, then j + 1, ...
        answer = (y.repeat(questions) + offsets[pick]) % 10
        tensors = {"image": x.repeat(questions, 1, 1), "text": ids[pick]}
        return pack_streams(streams, tensors), answer

    x_tr, y_tr = build(images.x_train, images.y_train)
    x_te, y_te = build(images.x_test, images.y_test)
    return {"name": "digits_qa", "kind": "classify", "x_train": x_tr, "y_train": y_tr,
            "x_test": x_te, "y_test": y_te, "seq_len": x_tr.shape[1], "n_classes": 10,
            "input_dim": packed_width(streams), "vocab": list(QA_VOCAB), "streams": streams}
