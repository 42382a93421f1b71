"""Pretrained transformers with quantum adapters for parameter-efficient fine-tuning, against
peft's LoRA and classical heads and bottlenecks at the same trainable-parameter budget.

>>> from qllm.pretrained import FinetuneConfig, finetune          # doctest: +SKIP
>>> res = finetune(FinetuneConfig(adapter="quantum_lora", task="stdlib_topics", epochs=1))
>>> res["final"]["test"]["accuracy"], res["params"]["trainable"]
"""

from qllm.pretrained.adapters import ADAPTERS, QUANTUM_ADAPTERS, AdaptedModel, build
from qllm.pretrained.backbones import BACKBONES, Backbone, embed, load_backbone, mean_pool
from qllm.pretrained.config import FinetuneConfig
from qllm.pretrained.finetune import finetune
from qllm.pretrained.tasks import TEXT_TASKS, TextTask, load_text_task

__all__ = ["ADAPTERS", "QUANTUM_ADAPTERS", "AdaptedModel", "build", "BACKBONES", "Backbone",
           "embed", "load_backbone", "mean_pool", "FinetuneConfig", "finetune", "TEXT_TASKS",
           "TextTask", "load_text_task"]
