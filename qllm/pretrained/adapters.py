"""Adapters on a frozen pretrained backbone, one registry entry each (``ADAPTERS``).

Every entry builds an ``AdaptedModel`` from a *copy* of the backbone (the loaded one is never
touched) and leaves trainable only what the method trains:

| name | what trains | where |
|---|---|---|
| ``quantum_lora`` | down-projection to angles -> VQC -> up-projection (zero-initialised), scaled alpha/r, parallel to the chosen linears | query, value |
| ``lora`` | peft's own LoRA (``LoraConfig``), rank r | query, value |
| ``quantum_adapter`` | Houlsby bottleneck after each block's feed-forward, a VQC in the middle | FFN output |
| ``bottleneck`` | the same shape with GELU where the circuit was | FFN output |
| ``quantum_head`` | data re-uploading VQC classifier on the pooled embedding, one qubit per class | head |
| ``linear_head`` / ``mlp_head`` | a linear / one-hidden-layer head (hidden width = classes) | head |
| ``full`` | every backbone weight and a linear head (the upper bound) | everything |

All but the head-only methods also train a linear classifier on the pooled embedding.
Head-only methods (``AdaptedModel.head_only``) never run the backbone inside training: the
loop computes pooled features once and caches them.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from qllm.errors import ConfigError
from qllm.pretrained.backbones import Backbone, mean_pool

# Module-name patterns per model type: attention projections (LoRA targets) and each block's
# feed-forward output projection (Houlsby adapter site).
ATTENTION_TARGETS = {"bert": ("query", "value"), "gpt2": ("c_attn",)}
FFN_OUTPUT = {"bert": r"layer\.\d+\.output\.dense$", "gpt2": r"h\.\d+\.mlp\.c_proj$"}


class AdaptedModel(nn.Module):
    """Backbone -> mean pooling -> head: ``forward(input_ids, attention_mask) -> (B, C)`` logits.

    Args:
        encoder: the (copied) transformers model, possibly with adapter modules inside.
        head: maps pooled features (B, H) to logits (B, C).
        head_only: True when nothing inside the encoder trains (features can be cached).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, head_only: bool):
        super().__init__()
        self.encoder, self.head, self.head_only = encoder, head, head_only

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled embeddings (B, H); without autograd when the encoder has nothing to train."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.head_only):
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            return mean_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids, attention_mask))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # no dropout in the backbone: cached features stay valid
        return self

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _dims(module: nn.Module) -> tuple[int, int]:
    """(in, out) features of a Linear or a transformers Conv1D (GPT-2)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if hasattr(module, "nf") and hasattr(module, "weight"):
        return module.weight.shape[0], module.nf
    raise ConfigError(f"adapter site {type(module).__name__} is not a linear layer")


class Branched(nn.Module):
    """A frozen linear with a trainable branch: ``base(x) + scale * branch(src)`` where ``src`` is
    ``x`` (LoRA: parallel) or ``base(x)`` (Houlsby adapter: serial, after the projection)."""

    def __init__(self, base: nn.Module, branch: nn.Module, scale: float, serial: bool):
        super().__init__()
        self.base, self.branch, self.scale, self.serial = base, branch, scale, serial

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return y + self.scale * self.branch(y if self.serial else x)


def _vqc(opts: dict, reupload: bool = False) -> nn.Module:
    from qllm.circuits import build_circuit
    from qllm.quantum_layer import QuantumLayer

    spec = build_circuit(opts["n_qubits"], opts["n_layers"], "angle", opts["ansatz"], reupload)
    return QuantumLayer(spec, init="normal", init_scale=0.1)  # near identity: a gentle start


def _bottleneck(d_in: int, d_out: int, width: int, middle: nn.Module, bias: bool) -> nn.Module:
    down, up = nn.Linear(d_in, width, bias=bias), nn.Linear(width, d_out, bias=bias)
    nn.init.zeros_(up.weight)  # the branch adds nothing at step 0: training starts at the backbone
    if bias:
        nn.init.zeros_(up.bias)
    return nn.Sequential(down, middle, up)


def _sites(encoder: nn.Module, names=None, pattern=None) -> list[str]:
    found = [n for n, m in encoder.named_modules() if n and (
        (names and n.rpartition(".")[2] in names) or (pattern and re.search(pattern, n)))]
    if not found:
        raise ConfigError(f"no adapter site matches target_modules={names or pattern!r} in this "
                          f"backbone")
    return found


def _replace(encoder: nn.Module, name: str, make) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = encoder.get_submodule(parent_name) if parent_name else encoder
    setattr(parent, child, make(getattr(parent, child)))


def _targets(backbone: Backbone, opts: dict) -> tuple[str, ...]:
    t = opts.get("target_modules") or ATTENTION_TARGETS.get(backbone.model_type)
    if not t:
        raise ConfigError(f"no default target_modules for model type {backbone.model_type!r}; "
                          "set target_modules")
    return tuple(t)


def _linear_head(backbone, n_classes, opts):
    return nn.Linear(backbone.hidden_size, n_classes)


def _branch_sites(serial: bool, quantum: bool):
    def build(backbone: Backbone, encoder: nn.Module, opts: dict) -> None:
        if serial:
            sites = _sites(encoder, pattern=FFN_OUTPUT.get(backbone.model_type, "$^"))
        else:
            sites = _sites(encoder, names=_targets(backbone, opts))
        width = opts["n_qubits"] if quantum else opts["rank"]
        scale = opts["alpha"] / width
        for name in sites:
            def make(base, width=width):
                d_in, d_out = _dims(base)
                d_in = d_out if serial else d_in
                middle = _vqc(opts) if quantum else nn.GELU()
                return Branched(base, _bottleneck(d_in, d_out, width, middle, bias=serial),
                                scale, serial)
            _replace(encoder, name, make)
    return build


def _peft_lora(backbone: Backbone, encoder: nn.Module, opts: dict) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=opts["rank"], lora_alpha=opts["alpha"], lora_dropout=0.0,
                     target_modules=list(_targets(backbone, opts)))
    return get_peft_model(encoder, cfg)


def _unfreeze(backbone, encoder, opts):
    encoder.requires_grad_(True)


def _head_width(n_classes: int) -> int:
    # heads are as wide as a linear head's output, so every head has a linear head's budget
    return max(n_classes, 2)


def _quantum_head(backbone, n_classes, opts):
    q = _head_width(n_classes)
    # angles from the embedding, re-uploaded before every ansatz layer (IonQ-style classifier)
    return nn.Sequential(nn.Linear(backbone.hidden_size, q),
                         _vqc({**opts, "n_qubits": q}, reupload=True), nn.Linear(q, n_classes))


def _mlp_head(backbone, n_classes, opts):
    h = _head_width(n_classes)
    return nn.Sequential(nn.Linear(backbone.hidden_size, h), nn.GELU(), nn.Linear(h, n_classes))


# name -> (encoder change or None, head builder, head_only)
ADAPTERS = {
    "quantum_lora": (_branch_sites(serial=False, quantum=True), _linear_head, False),
    "lora": (_peft_lora, _linear_head, False),
    "quantum_adapter": (_branch_sites(serial=True, quantum=True), _linear_head, False),
    "bottleneck": (_branch_sites(serial=True, quantum=False), _linear_head, False),
    "quantum_head": (None, _quantum_head, True),
    "linear_head": (None, _linear_head, True),
    "mlp_head": (None, _mlp_head, True),
    "full": (_unfreeze, _linear_head, False),
}
QUANTUM_ADAPTERS = ("quantum_lora", "quantum_adapter", "quantum_head")
DEFAULTS = {"rank": 4, "alpha": 8.0, "n_qubits": 4, "n_layers": 2,
            "ansatz": "hardware_efficient", "target_modules": None}


def build(backbone: Backbone, adapter: str, n_classes: int, **options) -> AdaptedModel:
    """An AdaptedModel of ``adapter`` on a copy of ``backbone`` (whose weights stay frozen).

    Args:
        backbone: from ``load_backbone``.
        adapter: a name in ``ADAPTERS``.
        n_classes: classifier outputs.
        options: ``rank`` (LoRA rank and bottleneck width), ``alpha`` (branch scale
            alpha/width), ``n_qubits`` / ``n_layers`` / ``ansatz`` (the VQC), ``target_modules``.
    Returns:
        the model; its new modules draw their initial weights from torch's global RNG.
    """
    if adapter not in ADAPTERS:
        raise ConfigError(f"adapter {adapter!r} is not one of {sorted(ADAPTERS)}")
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown adapter options {unknown}; allowed: {sorted(DEFAULTS)}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    change, make_head, head_only = ADAPTERS[adapter]
    encoder = copy.deepcopy(backbone.model)
    encoder.requires_grad_(False)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # BERT's [CLS] pooler: unused by mean pooling, so not run or trained
    if change is not None:
        encoder = change(backbone, encoder, opts) or encoder
    model = AdaptedModel(encoder, make_head(backbone, n_classes, opts), head_only)
    return model.train()
