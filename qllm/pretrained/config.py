"""FinetuneConfig: what ``qllm finetune`` trains (backbone, adapter, task) and how (the same loop
settings as ``TrainConfig``). Round-trips through dicts; ``override`` takes the same ``--set``
keys as ``qllm train`` (``lr=0.001`` or ``train.lr=0.001``, ``n_qubits=6``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from qllm.config import _check_number, _check_positive, _Config, _is_number
from qllm.errors import ConfigError

ADAPTER_FIELDS = ("rank", "alpha", "n_qubits", "n_layers", "ansatz", "target_modules")


@dataclass
class FinetuneConfig(_Config):
    backbone: str = "minilm"  # a name in qllm.pretrained.BACKBONES or a local model folder
    adapter: str = "quantum_lora"  # a name in qllm.pretrained.ADAPTERS
    task: str = "stdlib_topics"  # a name in qllm.pretrained.TEXT_TASKS
    task_options: dict = field(default_factory=dict)
    max_length: int = 48  # tokens per text (padded / truncated)
    max_train: int = 0  # use only the first N training examples (0: all)
    # adapter shape
    rank: int = 4  # LoRA rank and bottleneck width (heads are as wide as the classes)
    alpha: float = 8.0  # branch scale alpha / width (LoRA's convention)
    n_qubits: int = 4  # VQC width of quantum_lora / quantum_adapter (quantum_head: one per class)
    n_layers: int = 2
    ansatz: str = "hardware_efficient"
    target_modules: list | None = None  # None: query and value (BERT), c_attn (GPT-2)
    # the loop (as TrainConfig)
    epochs: int = 3
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 1
    checkpoint_every: int = 0
    max_steps: int = 0
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self):
        from qllm.circuits import ANSATZE
        from qllm.pretrained.adapters import ADAPTERS
        from qllm.pretrained.tasks import TEXT_TASKS

        for name, allowed in (("adapter", ADAPTERS), ("task", TEXT_TASKS), ("ansatz", ANSATZE)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of "
                                  f"{sorted(allowed)}")
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ConfigError(f"backbone must be a name or a folder path, got {self.backbone!r}")
        if not isinstance(self.task_options, dict):
            raise ConfigError(f"task_options must be a dict, got {self.task_options!r}")
        for name in ("max_length", "rank", "n_qubits", "n_layers", "epochs", "batch_size",
                     "eval_every"):
            _check_positive(name, getattr(self, name))
        for name in ("max_train", "checkpoint_every", "max_steps", "seed"):
            _check_positive(name, getattr(self, name), 0)
        if not (_is_number(self.lr) and 0 < self.lr < float("inf")):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr!r}")
        _check_number("alpha", self.alpha, 0.0)
        _check_number("warmup_frac", self.warmup_frac, 0.0, 0.999)
        _check_number("min_lr_frac", self.min_lr_frac, 0.0, 1.0)
        _check_number("weight_decay", self.weight_decay, 0.0)
        _check_number("grad_clip", self.grad_clip, 0.0)
        if self.target_modules is not None and not (
                isinstance(self.target_modules, list)
                and all(isinstance(t, str) for t in self.target_modules)):
            raise ConfigError(f"target_modules must be a list of module names or null, got "
                              f"{self.target_modules!r}")

    def adapter_options(self) -> dict:
        return {k: getattr(self, k) for k in ADAPTER_FIELDS}

    def override(self, updates: dict):
        """As ``_Config.override``; a leading ``train.`` or ``model.`` is accepted and dropped."""
        known = {f.name for f in fields(self)}
        clean = {}
        for key, value in updates.items():
            k = key.removeprefix("train.").removeprefix("model.")
            if k not in known and k.partition(".")[0] not in known:
                raise ConfigError(f"override {key!r} names no field; fields: {sorted(known)}")
            clean[k] = value
        return super().override(clean)
