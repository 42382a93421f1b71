"""Knowledge distillation (Hinton et al., arXiv:1503.02531) into hybrid or classical students.

``TrainConfig.distill`` names a teacher, a temperature T and a mixing weight alpha; the student
trains on ``(1 - alpha) * CE(student, labels) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))``.
The teacher's logits on the training split are computed once, before training, and cached (in
this process, keyed by the teacher and the data), so seeds and students that share a teacher
share one pass.

Teachers:
- a qllm checkpoint: ``checkpoint.pt`` of ``qllm train`` (or its run folder), loaded with
  ``weights_only=True``; its task and class count must be the student's;
- ``"callable:<name>"``: any callable ``f(x) -> logits [B, n_classes]`` registered with
  ``register_teacher`` (the hook for teachers that are not qllm models, e.g. a fine-tuned
  pretrained model).

>>> register_teacher("zeros", lambda x: torch.zeros(len(x), 10), n_classes=10, task="digits")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from qllm.errors import CheckpointError, ConfigError


@dataclass
class Teacher:
    """A registered teacher: ``fn(x) -> logits [B, n_classes]``; ``task`` (a task name or None
    for any) is checked against the student's."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    n_classes: int
    task: str | None = None


TEACHERS: dict[str, Teacher] = {}
_CACHE: dict[tuple, torch.Tensor] = {}
CALLABLE_PREFIX = "callable:"


def register_teacher(name: str, fn: Callable, n_classes: int, task: str | None = None) -> None:
    """Make ``fn`` usable as ``TrainConfig.distill.teacher = "callable:<name>"``."""
    if not callable(fn):
        raise ConfigError(f"register_teacher: fn must be callable, got {type(fn).__name__}")
    TEACHERS[name] = Teacher(fn, n_classes, task)


def _check_task(spec: str, teacher_task, teacher_classes, task) -> None:
    if teacher_task is not None and teacher_task != task.name:
        raise ConfigError(f"distill.teacher={spec!r} was trained on task {teacher_task!r}, but "
                          f"the student trains on {task.name!r}; use a teacher of that task")
    if teacher_classes != task.n_classes:
        raise ConfigError(f"distill.teacher={spec!r} predicts {teacher_classes} classes, but "
                          f"task {task.name!r} has {task.n_classes}")


def load_teacher(spec: str, task, device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The teacher named by ``spec`` as a function of a batch, after checking it fits ``task``."""
    if spec.startswith(CALLABLE_PREFIX):
        name = spec[len(CALLABLE_PREFIX):]
        if name not in TEACHERS:
            raise ConfigError(f"distill.teacher={spec!r}: no teacher {name!r} registered; "
                              f"registered: {sorted(TEACHERS)} (qllm.distill.register_teacher)")
        t = TEACHERS[name]
        _check_task(spec, t.task, t.n_classes, task)
        return t.fn
    from qllm.checkpoint import load_checkpoint
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    path = Path(spec)
    path = path / "checkpoint.pt" if path.is_dir() else path
    if not path.exists():
        raise CheckpointError(f"distill.teacher={spec!r}: no checkpoint at {str(path)!r} (give "
                              "a checkpoint.pt of 'qllm train', its run folder, or "
                              "'callable:<name>')")
    state = load_checkpoint(path, map_location=device,
                            require=("model", "model_config", "train_config"))
    cfg = ModelConfig.from_dict(state["model_config"])
    if cfg.task != "classify":
        raise ConfigError(f"distill.teacher={spec!r} is a {cfg.task!r} model; distillation needs "
                          "a classifier")
    _check_task(spec, state["train_config"].get("task"), cfg.n_classes, task)
    model = HybridTransformer(cfg).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"distill.teacher={spec!r} does not match its model config: "
                              f"{str(e).splitlines()[0][:300]}") from None
    return model.eval()


def _cache_key(spec: str, task) -> tuple:
    x = task.x_train
    data = (task.name, tuple(x.shape), float(x.double().sum()), float(task.y_train.sum()))
    if spec.startswith(CALLABLE_PREFIX):
        t = TEACHERS.get(spec[len(CALLABLE_PREFIX):])
        return (spec, id(t.fn) if t else None, *data)
    path = Path(spec)
    path = path / "checkpoint.pt" if path.is_dir() else path
    stat = path.stat() if path.exists() else None
    return (str(path.resolve()), stat and stat.st_mtime_ns, stat and stat.st_size, *data)


@torch.no_grad()
def teacher_logits(spec: str, task, device="cpu", batch_size: int = 256) -> torch.Tensor:
    """The teacher's logits on ``task.x_train``: ``[N_train, n_classes]`` float32 on the CPU,
    computed once per (teacher, data) in this process. The caller's RNG state is untouched
    (building a qllm teacher draws initial weights before loading its own)."""
    from qllm.rng import preserve_global_rng

    if task.kind != "classify":
        raise ConfigError(f"distill: task {task.name!r} is a {task.kind!r} task; distillation "
                          "supports classification tasks (digits, meaning, ...)")
    key = _cache_key(spec, task)
    if key not in _CACHE:
        with preserve_global_rng(device):
            fn = load_teacher(spec, task, device)
            out = [torch.as_tensor(fn(task.x_train[i:i + batch_size].to(device))).float().cpu()
                   for i in range(0, len(task.x_train), batch_size)]
        logits = torch.cat(out)
        if logits.shape != (len(task.x_train), task.n_classes) or not logits.isfinite().all():
            raise ConfigError(f"distill.teacher={spec!r} gave logits of shape "
                              f"{tuple(logits.shape)} (finite: {bool(logits.isfinite().all())}); "
                              f"expected finite ({len(task.x_train)}, {task.n_classes})")
        _CACHE[key] = logits
    return _CACHE[key]


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, hard_loss: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """``(1 - alpha) * hard_loss + alpha * T^2 * KL(p_teacher^T || p_student^T)``, the KL
    averaged over the batch. Args: ``student``, ``teacher``: logits ``[B, n_classes]``."""
    T = temperature
    soft = F.kl_div(F.log_softmax(student / T, -1), F.log_softmax(teacher / T, -1),
                    reduction="batchmean", log_target=True)
    return (1 - alpha) * hard_loss + alpha * T * T * soft


def make_objective(train_cfg, task, device) -> Callable:
    """The training loss, chosen once: ``objective(logits, hard_loss, idx)`` with ``idx`` the
    batch's rows of the training split. Without a teacher it returns ``hard_loss``."""
    d = train_cfg.distill
    if d.teacher is None:
        return lambda logits, hard_loss, idx: hard_loss
    cached = teacher_logits(d.teacher, task, device)

    def objective(logits, hard_loss, idx):
        return distillation_loss(logits, cached[idx].to(logits.device), hard_loss,
                                 d.temperature, d.alpha)

    return objective
