"""The hybrid transformer: embedding -> Block x n_layer -> norm -> head.

Each block is ``x = x + mixer(norm1(x)); x = x + ffn(norm2(x))`` with the mixer and FFN looked up
by name in the sublayer registries, so the same code runs classical, quantum or mixed models.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from qllm.config import ModelConfig
from qllm.errors import ConfigError, InputError, InputTypeError
from qllm.layers import FFNS, MIXERS
from qllm.quantum_layer import QuantumLayer
from qllm.validate import all_finite


class Block(nn.Module):
    """One pre-norm block; ``index`` picks its sublayer kinds when attn/ffn are per-block lists."""

    def __init__(self, cfg: ModelConfig, index: int = 0):
        super().__init__()
        attn, ffn = cfg.block_kinds(index)
        self.norm1 = nn.LayerNorm(cfg.n_embd)
        self.mixer = MIXERS[attn](cfg)
        self.norm2 = nn.LayerNorm(cfg.n_embd)
        self.ffn = FFNS[ffn](cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        x = x + self.ffn(self.norm2(x))
        return x


class HybridTransformer(nn.Module):
    """A small transformer whose attention and/or FFN sublayers may be quantum.

    Args:
        config: a ModelConfig.

    Input: token ids ``(B, T)`` (``vocab_size`` set) or features ``(B, T, input_dim)``.
    Returns logits: ``(B, n_classes)`` for ``task="classify"``, ``(B, T, vocab_size)`` for "lm";
    with ``targets`` also the cross-entropy loss (targets of -100 are ignored).

    >>> model = HybridTransformer(ModelConfig(input_dim=4, n_classes=10, ffn="quantum"))
    >>> model(torch.rand(2, 16, 4)).shape
    torch.Size([2, 10])
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ConfigError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = cfg = config
        if cfg.streams:
            from qllm.multimodal import MultiModalEmbedding

            self.embed = MultiModalEmbedding(cfg)  # joined streams + a modality embedding
        elif cfg.vocab_size is not None:
            self.embed = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        else:
            self.embed = nn.Linear(cfg.input_dim, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm = nn.LayerNorm(cfg.n_embd)
        out = cfg.vocab_size if cfg.task == "lm" else cfg.n_classes
        self.head = nn.Linear(cfg.n_embd, out)

    def _check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        if not torch.is_tensor(x):
            raise InputTypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        device = self.pos.weight.device
        if x.device != device:
            raise InputError(f"x is on {x.device} but the model on {device}; use "
                             f"x.to({str(device)!r}) or model.to(...)")
        if cfg.vocab_size is not None:
            if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
                raise InputError(f"x must be token ids of shape (B, T) and integer dtype, got "
                                 f"{tuple(x.shape)} {x.dtype}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= cfg.vocab_size):
                raise InputError(f"token ids must lie in [0, {cfg.vocab_size}), got "
                                 f"[{int(x.min())}, {int(x.max())}]")
        else:
            if x.dim() != 3 or x.shape[-1] != cfg.input_dim or not x.is_floating_point():
                raise InputError(f"x must be float features of shape (B, T, {cfg.input_dim}), got "
                                 f"{tuple(x.shape)} {x.dtype}")
            if not all_finite(x):
                raise InputError("x contains NaN or inf")
            if cfg.streams:
                self.embed.check(x)
        if x.shape[1] > cfg.block_size:
            raise InputError(f"sequence length {x.shape[1]} exceeds block_size={cfg.block_size} "
                             "(the positional table); raise block_size in the ModelConfig")

    def _check_targets(self, x: torch.Tensor, targets) -> None:
        cfg = self.config
        if not torch.is_tensor(targets) or targets.dtype not in (torch.int64, torch.int32):
            raise InputError(f"targets must be an integer tensor of class ids, got "
                             f"{type(targets).__name__ if not torch.is_tensor(targets) else targets.dtype}")
        shape = tuple(x.shape[:2]) if cfg.task == "lm" else (x.shape[0],)
        if tuple(targets.shape) != shape:
            raise InputError(f"targets must have shape {shape}, got {tuple(targets.shape)}")
        n = cfg.vocab_size if cfg.task == "lm" else cfg.n_classes
        valid = (targets >= 0) & (targets < n) | (targets == -100)
        if targets.numel() and not bool(valid.all()):
            raise InputError(f"targets must lie in [0, {n}) (or be -100 to ignore), got values in "
                             f"[{int(targets.min())}, {int(targets.max())}]")

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        self._check_input(x)
        if targets is not None:
            self._check_targets(x, targets)
        T = x.shape[1]
        pos = torch.arange(T, device=x.device)
        h = self.drop(self.embed(x) + self.pos(pos))  # (B, T, C)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        # sublayers with an auxiliary loss (MoE load balancing) leave it in .aux_loss; the
        # blocks' two sublayers are asked, not every module (this runs every step)
        aux = [a for block in self.blocks for sublayer in (block.mixer, block.ffn)
               if (a := getattr(sublayer, "aux_loss", None)) is not None]
        self.last_aux_loss = sum(aux[1:], aux[0]) if aux else None
        if self.config.task == "lm":
            logits = self.head(h)  # (B, T, vocab)
            loss = None if targets is None else F.cross_entropy(
                logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        else:
            logits = self.head(h.mean(1))  # (B, n_classes)
            loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits if targets is None else (logits, loss)

    def aux_loss(self):
        """The auxiliary losses of the last forward (MoE load balancing), summed; 0.0 if none.
        ``qllm.train`` adds it to the training loss."""
        aux = getattr(self, "last_aux_loss", None)
        return 0.0 if aux is None else aux

    # -- bookkeeping -------------------------------------------------------------------------
    def num_params(self, quantum_only: bool = False) -> int:
        if quantum_only:
            return sum(m.weights.numel() for m in self.quantum_layers())
        return sum(p.numel() for p in self.parameters())

    def quantum_layers(self) -> list[QuantumLayer]:
        return [m for m in self.modules() if isinstance(m, QuantumLayer)]

    def set_backend(self, backend: str, backend_options: dict | None = None,
                    **options) -> HybridTransformer:
        """Run every quantum sublayer on another backend (weights unchanged); options as for
        ``QuantumLayer`` (a dict, or keywords)."""
        from qllm.quantum_layer import use_backend

        use_backend(self, backend, backend_options=backend_options, **options)
        return self

    def backend_name(self) -> str:
        """The name of the backend every quantum sublayer runs on ("torch" for a classical
        model); mixed backends are refused (name one explicitly)."""
        names = {layer.backend.name for layer in self.quantum_layers()} or {"torch"}
        if len(names) > 1:
            raise ConfigError(f"the quantum sublayers run on several backends {sorted(names)}; "
                              "name the backend explicitly")
        return names.pop()

    @contextlib.contextmanager
    def using_backend(self, backend: str, backend_options: dict | None = None, **options):
        """Run every quantum sublayer on another backend inside a ``with`` block only; each
        layer's backend and gradient method come back afterwards, also after an exception.

        >>> with model.using_backend("aer", shots=256, seed=1):   # doctest: +SKIP
        ...     metrics = evaluate(model, task)

        Args / options: as for ``set_backend`` (``shots``, ``seed``, ``gradient``, ...).

        Yields:
            The model.
        """
        saved = [(layer, layer.backend, layer.gradient, layer.gradient_fn)
                 for layer in self.quantum_layers()]
        try:
            self.set_backend(backend, backend_options, **options)
            yield self
        finally:
            for layer, be, gradient, gradient_fn in saved:
                layer.backend, layer.gradient, layer.gradient_fn = be, gradient, gradient_fn

    def example_input(self, seq_len: int):
        """A valid one-sequence input for dry runs, or None where the default one fits."""
        make = getattr(self.embed, "example_input", None)
        return make(seq_len) if make is not None else None

    def cost_report(self, seq_len: int | None = None, **kwargs):
        """Resource cost of this model (see ``qllm.cost.cost_report``)."""
        from qllm.cost import cost_report

        return cost_report(self, seq_len=seq_len or self.config.block_size, **kwargs)
