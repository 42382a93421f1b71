"""The training loop: AdamW, warm-up + cosine schedule, gradient clipping, seeded data order,
periodic evaluation, atomic checkpoints with exact resume, and a results JSON per run.

Determinism: everything drawn (init, data order, dropout, shots) follows ``TrainConfig.seed``,
and the caller's global RNG state is left as it was (the loop runs inside ``fork_rng``).
The data order of epoch e is a permutation seeded by (seed, e), so a run resumed mid-epoch sees
exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from qllm.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from qllm.config import ModelConfig, TrainConfig
from qllm.data import TaskData, load_task
from qllm.errors import CheckpointError
from qllm.model import HybridTransformer
from qllm.results import machine, versions, write_json


def lr_lambda(cfg: TrainConfig, total_steps: int):
    warmup = int(cfg.warmup_frac * total_steps)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


@torch.no_grad()
def evaluate(model: HybridTransformer, task: TaskData, split: str = "test",
             batch_size: int = 256) -> dict:
    """Loss and the task metric (accuracy; perplexity for text LM) on a split."""
    x, y = (task.x_test, task.y_test) if split == "test" else (task.x_train, task.y_train)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss = correct = count = 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits, loss = model(xb, yb)
        if task.kind == "lm":
            mask = yb != -100
            n = int(mask.sum())
            correct += float((logits.argmax(-1)[mask] == yb[mask]).sum())
        else:
            n = len(yb)
            correct += float((logits.argmax(-1) == yb).sum())
        total_loss += float(loss) * n
        count += n
    model.train(was_training)
    out = {"loss": total_loss / count, "accuracy": correct / count}
    if task.metric == "perplexity":
        out["perplexity"] = math.exp(out["loss"])
    return out


def model_config_for(task: TaskData, model_cfg: ModelConfig) -> ModelConfig:
    """Fill in the fields the task fixes (input kind, classes, sequence length)."""
    return model_cfg.override({k: v for k, v in task.model_fields().items()})


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, out_dir: str | Path | None = None,
          resume: bool = False, task: TaskData | None = None) -> dict:
    """Train a model; returns the results dict (also written to ``out_dir/results.json``).

    Args:
        model_cfg: the model; task-dependent fields are filled from the task.
        train_cfg: the loop's settings (task name, epochs, seed...).
        out_dir: where ``checkpoint.pt`` and ``results.json`` go (None: nothing is written).
        resume: continue from ``out_dir/checkpoint.pt``.
        task: a loaded TaskData (default: ``load_task(train_cfg.task, **train_cfg.task_options)``).
    """
    task = task or load_task(train_cfg.task, **train_cfg.task_options)
    model_cfg = model_config_for(task, model_cfg)
    out_dir = Path(out_dir) if out_dir is not None else None
    ckpt_path = out_dir / "checkpoint.pt" if out_dir is not None else None
    if resume and (ckpt_path is None or not ckpt_path.exists()):
        raise CheckpointError(f"--resume needs a checkpoint at {ckpt_path}, found none")
    device = torch.device(train_cfg.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(train_cfg.seed)
        return _train(model_cfg, train_cfg, task, out_dir, ckpt_path, resume, device)


def _train(model_cfg, train_cfg, task, out_dir, ckpt_path, resume, device) -> dict:
    model = HybridTransformer(model_cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": train_cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=train_cfg.lr)
    n_train = len(task.x_train)
    steps_per_epoch = math.ceil(n_train / train_cfg.batch_size)
    total_steps = steps_per_epoch * train_cfg.epochs
    if train_cfg.max_steps:
        total_steps = min(total_steps, train_cfg.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(train_cfg, total_steps))
    step, history, losses, wall = 0, [], [], 0.0
    if resume:
        state = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, history, losses, wall = state["step"], state["history"], state["losses"], state["wall_time_s"]
        set_rng_state(state["rng"])

    def checkpoint():
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "step": step, "history": history,
                "losses": losses, "wall_time_s": wall + time.perf_counter() - t0,
                "rng": rng_state(), "model_config": model_cfg.to_dict(),
                "train_config": train_cfg.to_dict(), "versions": versions()})

    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=total_steps, initial=step, desc=f"train {task.name}",
               disable=not train_cfg.progress, leave=False)
    while step < total_steps:
        epoch, first = divmod(step, steps_per_epoch)
        g = torch.Generator().manual_seed(train_cfg.seed * 100_003 + epoch)
        order = torch.randperm(n_train, generator=g)
        for b in range(first, steps_per_epoch):
            idx = order[b * train_cfg.batch_size:(b + 1) * train_cfg.batch_size]
            xb, yb = task.x_train[idx].to(device), task.y_train[idx].to(device)
            _, loss = model(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if train_cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if train_cfg.checkpoint_every and step % train_cfg.checkpoint_every == 0:
                checkpoint()
            if step >= total_steps:
                break
        epoch_done = step % steps_per_epoch == 0 or step >= total_steps
        if epoch_done and ((epoch + 1) % train_cfg.eval_every == 0 or step >= total_steps):
            metrics = evaluate(model, task)
            history.append({"epoch": epoch + 1, "step": step, "train_loss": losses[-1],
                            **{f"test_{k}": v for k, v in metrics.items()}})
            bar.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in history[-1].items()
                                                          if k not in ("epoch",)))
        if epoch_done:
            checkpoint()
    bar.close()
    wall += time.perf_counter() - t0
    final = evaluate(model, task)
    results = {
        "task": task.name, "metric": task.metric, "seed": train_cfg.seed,
        "model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict(),
        "params": {"total": model.num_params(), "quantum": model.num_params(quantum_only=True)},
        "final": final, "history": history, "losses": losses, "wall_time_s": wall,
        "steps": step, "versions": versions(), "machine": machine(),
    }
    results["cost"] = _cost(model, task)
    if out_dir is not None:
        write_json(out_dir / "results.json", results)
    results["model"] = model
    return results


def _cost(model: HybridTransformer, task: TaskData) -> dict | None:
    """The cost report, if the cost module is available (it transpiles: keep it cheap)."""
    try:
        from qllm.cost import cost_report
    except ImportError:
        return None
    return cost_report(model, seq_len=task.seq_len).to_dict()
