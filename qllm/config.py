"""Dataclass configs: QuantumConfig, ModelConfig, TrainConfig. Each round-trips through dicts and
JSON, and an override that names a field that does not exist fails loudly (as minGPT's does).

>>> cfg = ModelConfig(input_dim=4, n_classes=10, ffn="quantum")
>>> cfg.override({"quantum.n_qubits": 6}).quantum.n_qubits
6
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qllm.errors import ConfigError
from qllm.validate import is_int, is_real

# Sublayer kinds that run no circuit (the rest of the MIXERS / FFNS registries do).
CLASSICAL_KINDS = ("classical", "moe", "bottleneck", "fusion")


class _Config:
    """Shared to/from dict, JSON and dotted overrides."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__} needs a dict, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(f"{cls.__name__} has no field(s) {unknown}; fields: {sorted(known)}")
        kwargs = {}
        for k, v in d.items():
            sub = _NESTED.get((cls.__name__, k))
            kwargs[k] = sub.from_dict(v) if sub is not None and isinstance(v, dict) else v
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path):
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {str(path)!r} is not valid JSON: {e}") from None

    def override(self, updates: dict[str, Any]):
        """A copy with ``{"field": v, "nested.field": v}`` applied; unknown keys raise ConfigError."""
        d = self.to_dict()
        for key, value in updates.items():
            node = d
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"override {key!r}: {p!r} is not a nested config")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"override {key!r} names no field; fields here: {sorted(node)}")
            node[parts[-1]] = value
        return type(self).from_dict(d)


def _nested(name: str, value, cls, example: str):
    """A nested config given as a dict (JSON, ``--set``) or as the config itself."""
    if isinstance(value, dict):
        try:
            value = cls.from_dict(value)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}" if not str(e).startswith(name) else str(e)) from None
    if not isinstance(value, cls):
        raise ConfigError(f"{name} must be a dict of {cls.__name__} fields (e.g. {example}) or a "
                          f"{cls.__name__}, got {value!r}")
    return value


def _check_choice(name: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:  # (a list is not even hashable)
        raise ConfigError(f"{name}={value!r} is not one of {sorted(allowed)}")


def _check_kind(name: str, value, registry) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a sublayer name (one of {sorted(registry)}) or, for "
                          f"attn and ffn, a list of one per block; got {value!r}")
    _check_choice(name, value, registry)


def _is_number(value) -> bool:
    return is_real(value) and value == value


def _check_number(name: str, value, low: float, high: float = float("inf")) -> None:
    if not (_is_number(value) and low <= value <= high and value != float("inf")):
        raise ConfigError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")


# Counts and sizes beyond this cannot be built or run; refusing them here beats an overflow later.
_INT_MAX = 2**31 - 1


def _check_positive(name: str, value, minimum=1, maximum=_INT_MAX) -> None:
    if not is_int(value) or not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be an int in [{minimum}, {maximum}], got {value!r}")


@dataclass
class QuantumConfig(_Config):
    """How every quantum sublayer of a model builds its circuit and where it runs."""

    n_qubits: int = 4
    n_layers: int = 2  # ansatz layers (with reupload: encoding + ansatz repeated this many times)
    encoding: str = "angle"  # a name in qllm.circuits.ENCODINGS
    ansatz: str = "hardware_efficient"  # a name in qllm.circuits.ANSATZE
    reupload: bool = False
    backend: str = "torch"  # "torch", "pennylane:<device>", "aer", "aer:<fake_backend>"
    backend_options: dict = field(default_factory=dict)  # passed to the backend factory
    gradient: str = "backprop"  # "backprop", "parameter-shift" or "spsa" (shot-based backends)
    spsa_samples: int = 1  # SPSA: random directions averaged per backward (2 circuits each)
    init: str = "uniform"  # circuit weights: uniform in [0, 2pi), "normal" (small), "zeros"
    # False: every multi-qubit gate removed (a product-state control, classically simulable)
    entangling: bool = True

    def __post_init__(self):
        _check_positive("quantum.n_qubits", self.n_qubits, 1, 1024)  # beyond any device
        _check_positive("quantum.n_layers", self.n_layers)
        _check_positive("quantum.spsa_samples", self.spsa_samples)
        if not isinstance(self.entangling, bool):
            raise ConfigError(f"quantum.entangling must be true or false, got {self.entangling!r}")
        from qllm.circuits import ANSATZE, ENCODINGS

        _check_choice("quantum.encoding", self.encoding, ENCODINGS)
        _check_choice("quantum.ansatz", self.ansatz, ANSATZE)
        from qllm.backends.gradients import LAYER_GRADIENTS

        _check_choice("quantum.gradient", self.gradient, LAYER_GRADIENTS)
        from qllm.quantum_layer import INITS

        _check_choice("quantum.init", self.init, INITS)
        if not isinstance(self.reupload, bool):
            raise ConfigError(f"quantum.reupload must be true or false, got {self.reupload!r}")
        if not isinstance(self.backend_options, dict):
            raise ConfigError("quantum.backend_options must be a dict")
        from qllm.backends import BACKENDS

        kind = self.backend.partition(":")[0] if isinstance(self.backend, str) else None
        if kind not in BACKENDS:
            raise ConfigError(f"quantum.backend={self.backend!r} is not a backend name; allowed: "
                              "'torch', 'pennylane:<device>', 'aer', 'aer:<fake_backend>'")

    def build_spec(self, observables=None):
        from qllm.circuits import build_circuit

        spec = build_circuit(self.n_qubits, self.n_layers, self.encoding, self.ansatz,
                             self.reupload, observables)
        return spec if self.entangling else spec.without_entanglement()


@dataclass
class MoEConfig(_Config):
    """Mixture of experts for ``ffn="quantum_moe"`` / ``"moe"`` (qllm.layers.experts)."""

    n_experts: int = 4
    top_k: int = 1  # experts per token
    aux_loss_weight: float = 0.01  # weight of the Switch load-balancing loss
    capacity_factor: float = 1.25  # expert capacity ceil(f * tokens * top_k / n_experts); 0: none
    expert_hidden: int = 0  # classical experts' MLP width; 0: match a quantum expert's params

    def __post_init__(self):
        _check_positive("moe.n_experts", self.n_experts)
        _check_positive("moe.top_k", self.top_k)
        if self.top_k > self.n_experts:
            raise ConfigError(f"moe.top_k={self.top_k} exceeds moe.n_experts={self.n_experts}; "
                              f"allowed: 1..{self.n_experts}")
        _check_number("moe.aux_loss_weight", self.aux_loss_weight, 0.0)
        _check_number("moe.capacity_factor", self.capacity_factor, 0.0)
        _check_positive("moe.expert_hidden", self.expert_hidden, 0)


@dataclass
class DistillConfig(_Config):
    """Knowledge distillation (qllm.distill): off while ``teacher`` is None."""

    teacher: str | None = None  # a qllm checkpoint (file or run folder) or "callable:<name>"
    temperature: float = 2.0  # softens both distributions; the soft loss is scaled by T^2
    alpha: float = 0.5  # weight of the soft (teacher) loss; 1 - alpha on the hard labels

    def __post_init__(self):
        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher):
            raise ConfigError(f"distill.teacher must be a checkpoint path, 'callable:<name>' or "
                              f"None, got {self.teacher!r}")
        if not (_is_number(self.temperature) and 0 < self.temperature < float("inf")):
            raise ConfigError(f"distill.temperature must be a finite number > 0, got "
                              f"{self.temperature!r}")
        _check_number("distill.alpha", self.alpha, 0.0, 1.0)


@dataclass
class ModelConfig(_Config):
    """A small pre-norm transformer (nanoGPT mould). Exactly one of ``vocab_size`` (token ids) and
    ``input_dim`` (float features per token, e.g. image patches) is set."""

    task: str = "classify"  # "classify": pooled logits over n_classes; "lm": next-token logits
    vocab_size: int | None = None
    input_dim: int | None = None
    n_classes: int = 10  # classify only
    block_size: int = 16  # longest sequence: the size of the positional table
    n_embd: int = 32
    n_head: int = 4
    n_layer: int = 2
    mlp_ratio: int = 4  # classical FFN hidden width = mlp_ratio * n_embd
    # token mixer: "classical", "quantum" (VQC Q/K/V), "qsann", "bottleneck"; or one per block
    attn: str | list = "classical"
    ffn: str | list = "classical"  # "classical", "quantum", "bottleneck"; or one per block
    dropout: float = 0.0
    quantum: QuantumConfig = field(default_factory=QuantumConfig)
    # several input streams in one sequence (qllm.multimodal): [{"name", "kind", "length", ...}]
    streams: list = field(default_factory=list)
    moe: MoEConfig = field(default_factory=MoEConfig)  # ffn="quantum_moe" / "moe" only

    def __post_init__(self):
        self.quantum = _nested("quantum", self.quantum, QuantumConfig, "quantum.n_qubits=4")
        _check_choice("model.task", self.task, ("classify", "lm"))
        self.moe = _nested("moe", self.moe, MoEConfig, "moe.n_experts=4")
        from qllm.layers import FFNS, MIXERS

        if (self.vocab_size is None) == (self.input_dim is None):
            raise ConfigError("set exactly one of vocab_size (tokens) and input_dim (features); "
                              f"got vocab_size={self.vocab_size}, input_dim={self.input_dim}")
        if self.task == "lm" and self.vocab_size is None:
            raise ConfigError("task='lm' needs vocab_size")
        for name in ("block_size", "n_embd", "n_head", "n_layer", "mlp_ratio"):
            _check_positive(name, getattr(self, name))
        for name, registry in (("attn", MIXERS), ("ffn", FFNS)):
            self._check_placement(name, registry)
        if self.vocab_size is not None:
            _check_positive("vocab_size", self.vocab_size, 2)
        if self.input_dim is not None:
            _check_positive("input_dim", self.input_dim)
        if self.streams:
            from qllm.multimodal import check_streams

            check_streams(self.streams, self.input_dim)
        if self.task == "classify":
            _check_positive("n_classes", self.n_classes, 2)
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not (_is_number(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def _check_placement(self, name: str, registry) -> None:
        value = getattr(self, name)
        if isinstance(value, tuple):
            value = list(value)
            setattr(self, name, value)
        if isinstance(value, list):
            if len(value) != self.n_layer:
                raise ConfigError(f"{name} lists {len(value)} kinds but n_layer={self.n_layer}: "
                                  "give one per block, or one name for all")
            for i, kind in enumerate(value):
                _check_kind(f"{name}[{i}]", kind, registry)
        else:
            _check_kind(name, value, registry)

    def block_kinds(self, index: int) -> tuple[str, str]:
        """(attn, ffn) sublayer names of block ``index`` (per-block lists or one name for all)."""
        def pick(v):
            return v[index] if isinstance(v, list) else v

        return pick(self.attn), pick(self.ffn)

    @property
    def quantum_sublayers(self) -> bool:
        """True if any block has a sublayer that runs circuits (every kind but the classical
        ones: the MLP, its mixture of experts, the circuit's bottleneck control, classical fusion)."""
        return any(k not in CLASSICAL_KINDS for i in range(self.n_layer) for k in self.block_kinds(i))


@dataclass
class TrainConfig(_Config):
    """The training loop's settings."""

    task: str = "digits"  # a name in qllm.data.TASKS
    task_options: dict = field(default_factory=dict)  # e.g. {"path": "corpus.txt"} for "text"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.05  # fraction of all steps spent in linear warm-up before cosine decay
    min_lr_frac: float = 0.1  # cosine decays to lr * min_lr_frac
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    seed: int = 0
    eval_every: int = 1  # epochs between evaluations (on the validation split)
    # fraction of the training data held out, seeded by ``seed``, for learning curves and model
    # selection; the test split is read once, at the end (0: no validation, no curves)
    val_frac: float = 0.1
    checkpoint_every: int = 0  # steps between checkpoints (0: at the end of each epoch only)
    max_steps: int = 0  # stop after this many steps (0: run all epochs)
    device: str = "cpu"
    progress: bool = True  # tqdm progress bars
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self):
        self.distill = _nested("distill", self.distill, DistillConfig, "train.distill.alpha=0.5")
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        _check_positive("eval_every", self.eval_every)
        for name in ("checkpoint_every", "max_steps"):
            _check_positive(name, getattr(self, name), 0)
        if not (_is_number(self.lr) and 0 < self.lr < float("inf")):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not (_is_number(self.warmup_frac) and 0 <= self.warmup_frac < 1):
            raise ConfigError(f"warmup_frac must be in [0, 1), got {self.warmup_frac!r}")
        _check_number("min_lr_frac", self.min_lr_frac, 0.0, 1.0)
        _check_number("val_frac", self.val_frac, 0.0, 0.5)
        _check_number("weight_decay", self.weight_decay, 0.0)
        _check_number("grad_clip", self.grad_clip, 0.0)
        from qllm.seeds import check_seed

        check_seed(self.seed, "seed")
        from qllm.data import TASKS

        _check_choice("train.task", self.task, TASKS)
        if not isinstance(self.task_options, dict):
            raise ConfigError(f"task_options must be a dict, got {self.task_options!r}")
        if not isinstance(self.progress, bool):
            raise ConfigError(f"progress must be true or false, got {self.progress!r}")
        try:
            import torch

            if not isinstance(self.device, str):
                raise TypeError
            torch.device(self.device)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"device {self.device!r} is not a torch device name ('cpu', "
                              "'cuda', 'cuda:0', ...)") from None


_NESTED = {("ModelConfig", "quantum"): QuantumConfig, ("ModelConfig", "moe"): MoEConfig,
           ("TrainConfig", "distill"): DistillConfig}
