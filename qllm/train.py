"""The training loop: AdamW, warm-up + cosine schedule, gradient clipping, seeded data order,
periodic evaluation, atomic checkpoints with exact resume, and a results JSON per run.

Determinism: everything drawn (init, data order, dropout, shots, SPSA directions) follows
``TrainConfig.seed``: the global generators are seeded with it, and every private generator of the
model's quantum layers (shot samplers, SPSA, Aer job seeds) is reseeded from it and the layer's
name (``qllm.layer_rng.seed_layers``). The caller's torch, CUDA, numpy and Python RNG states are left
as they were (``qllm.rng.preserve_global_rng``).
The data order of epoch e is a permutation seeded by (seed, e), so a run resumed mid-epoch sees
exactly the batches the uninterrupted run would have seen.

Exact resume: a checkpoint holds the model, optimizer and scheduler state, the step, the loss
curve and history, the global RNG states and every private generator's state (inside the
model's state dict: ``QuantumLayer.get_extra_state``), so 40 steps + a
checkpoint + a new process + 60 steps give bit-identical weights and losses to 100 steps (CPU).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from qllm.checkpoint import (
    _check_plain,
    save_checkpoint,
)
from qllm.config import ModelConfig, TrainConfig
from qllm.data import TaskData, load_task, with_validation
from qllm.distill import make_objective
from qllm.errors import CheckpointError, ConfigError, DataError, InputError, StorageError
from qllm.layer_rng import seed_layers
from qllm.model import HybridTransformer
from qllm.quantum_layer import circuit_parameters
from qllm.results import machine, sweep_temporaries, versions, write_json
from qllm.resume import RunProgress, restore_run, run_state
from qllm.rng import preserve_global_rng, seed_global
from qllm.runlock import RunLock
from qllm.seeds import fold
from qllm.validate import is_int


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
             batch_size: int = 256, backend: str | None = None, shots: int | None = None,
             seed: int | None = None, backend_options: dict | None = None) -> dict:
    """Loss and the task metric (accuracy; perplexity for text LM) on a split.

    Args:
        model / task: the model and the TaskData to score it on.
        split: "test", "val" (the validation split ``qllm.data.with_validation`` holds out)
            or "train".
        batch_size: sequences per forward pass.
        backend: run the quantum sublayers on this backend for this call only (e.g.
            ``"aer:fake_manila"``); None keeps the model's. The model's backends are restored
            afterwards, also when the evaluation fails (``model.using_backend``).
        shots / seed: shots per circuit and the sampler's seed for this call (with no
            ``backend``: on the model's current backend).
        backend_options: further backend options for this call.

    Returns:
        ``{"loss", "accuracy"}`` (+ ``"perplexity"`` for text LM).
    """
    if not is_int(batch_size) or batch_size < 1:
        raise InputError(f"batch_size must be an int >= 1, got {batch_size!r}")
    splits = {"test": (task.x_test, task.y_test), "val": (task.x_val, task.y_val),
              "train": (task.x_train, task.y_train)}
    if split not in splits or splits[split][0] is None:
        have = [k for k, v in splits.items() if v[0] is not None]
        raise InputError(f"split={split!r} is not one of this task's splits {have}")
    options = {**(backend_options or {}), **{k: v for k, v in (("shots", shots), ("seed", seed))
                                              if v is not None}}
    if backend is None and options:
        backend = model.backend_name()
    if backend is not None:
        with model.using_backend(backend, **options):
            return evaluate(model, task, split, batch_size)
    x, y = splits[split]
    if len(x) == 0:
        raise DataError(f"task {task.name!r} has no {split} sequences to evaluate")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss = correct = count = 0.0
    try:
        with torch.no_grad():  # no graph: shot-based backends cannot backpropagate anyway
            for i in range(0, len(x), batch_size):
                xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
                logits, loss = model(xb, yb)
                mask = yb != -100 if task.kind == "lm" else torch.ones_like(yb, dtype=torch.bool)
                n = int(mask.sum())
                correct += float((logits.argmax(-1)[mask] == yb[mask]).sum())
                total_loss += float(loss) * n
                count += n
    finally:
        model.train(was_training)
    out = {"loss": total_loss / count, "accuracy": correct / count}
    if task.metric == "perplexity":
        out["perplexity"] = math.exp(out["loss"])
    return out


def model_config_for(task: TaskData, model_cfg: ModelConfig) -> ModelConfig:
    """Fill in the fields the task fixes (input kind, classes, sequence length)."""
    return model_cfg.override({k: v for k, v in task.model_fields().items()})


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, out_dir: str | Path | None = None,
          resume: bool = False, task: TaskData | None = None,
          cost_options: dict | None = None) -> dict:
    """Train a model; returns the results dict (also written to ``out_dir/results.json``).

    Args:
        model_cfg: the model; task-dependent fields are filled from the task.
        train_cfg: the loop's settings (task name, epochs, seed...).
        out_dir: where ``checkpoint.pt`` and ``results.json`` go (None: nothing is written).
        resume: continue from ``out_dir/checkpoint.pt``.
        task: a loaded TaskData (default: ``load_task(train_cfg.task, **train_cfg.task_options)``).
        cost_options: ``qllm.cost.cost_report`` options for the results' cost (``shots``,
            ``target``, ``gradient``, ``profile``...); batch size, steps per epoch and epochs
            come from this run.
    """
    if not isinstance(model_cfg, ModelConfig):
        raise ConfigError(f"model_cfg must be a ModelConfig, got {type(model_cfg).__name__}")
    if not isinstance(train_cfg, TrainConfig):
        raise ConfigError(f"train_cfg must be a TrainConfig, got {type(train_cfg).__name__}")
    if out_dir is not None and not isinstance(out_dir, (str, Path)):
        raise ConfigError(f"out_dir must be a folder path or None, got {type(out_dir).__name__}")
    if not isinstance(resume, bool):
        raise ConfigError(f"resume must be True or False, got {resume!r}")
    if cost_options is not None and not isinstance(cost_options, dict):
        raise ConfigError(f"cost_options must be a dict or None, got {type(cost_options).__name__}")
    _check_cost_options(cost_options or {})
    if task is not None and not isinstance(task, TaskData):
        raise DataError(f"task must be a TaskData (see qllm.data.load_task), got "
                        f"{type(task).__name__}")
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"out_dir {str(out_dir)!r} exists and is not a folder")
    ckpt_path = out_dir / "checkpoint.pt" if out_dir is not None else None
    if resume and (ckpt_path is None or not ckpt_path.exists()):
        raise CheckpointError(f"resume needs a checkpoint at {str(ckpt_path)!r}, found none")
    device = _device(train_cfg.device)
    if out_dir is not None:  # fail now, not at the first checkpoint an epoch later
        _check_plain({"model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict()},
                     "state")
    task = task or load_task(train_cfg.task, **train_cfg.task_options)
    if train_cfg.val_frac > 0 and task.x_val is None:
        task = with_validation(task, train_cfg.val_frac, train_cfg.seed)
    model_cfg = model_config_for(task, model_cfg)
    objective = make_objective(train_cfg, task, device)  # hard labels, or distillation
    with _run_folder(out_dir), preserve_global_rng(device):
        seed_global(train_cfg.seed)
        return _train(model_cfg, train_cfg, task, out_dir, ckpt_path, resume, device,
                      cost_options or {}, objective)


@contextlib.contextmanager
def _run_folder(out_dir: Path | None):
    """Hold the run folder's lock, sweep temporaries of killed writes, and turn a failed write
    into one message that says where the last good checkpoint is."""
    if out_dir is None:
        yield
        return
    with RunLock(out_dir):
        for name in ("checkpoint.pt", "results.json", None):
            sweep_temporaries(out_dir, name)
        try:
            yield
        except StorageError as e:
            ckpt = out_dir / "checkpoint.pt"
            last = (f"the last good checkpoint {str(ckpt)!r} is intact; resume with "
                    f"`qllm train --out {out_dir} --resume`" if ckpt.exists()
                    else "no checkpoint had been written yet")
            raise StorageError(f"{e}; {last}") from None


def _check_cost_options(options: dict) -> None:
    """Unknown cost options fail now, not after the whole run has trained."""
    import inspect

    try:
        from qllm.cost import cost_report
    except ImportError:  # a stripped environment: no cost report at all (see _cost)
        return
    allowed = set(inspect.signature(cost_report).parameters) - {
        "model", "seq_len", "batch_size", "steps_per_epoch", "epochs"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"cost_options {unknown} are not options of qllm.cost.cost_report; "
                          f"allowed: {sorted(allowed)}")


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {name!r} is not a torch device name ('cpu', 'cuda', "
                          "'cuda:0', ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine; use 'cpu'")
    return device


def _optimizer(model: HybridTransformer, train_cfg: TrainConfig, total_steps: int):
    """AdamW (no weight decay on biases and norms) and the warm-up + cosine schedule."""
    # circuit angles never decay, also where a layer's circuits share one 2-D tensor
    angles = {id(p) for p in circuit_parameters(model)}
    decay = [p for p in model.parameters() if p.dim() >= 2 and id(p) not in angles]
    no_decay = [p for p in model.parameters() if p.dim() < 2 or id(p) in angles]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": train_cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=train_cfg.lr)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(train_cfg, total_steps))


def _step(model, opt, sched, objective, batch, train_cfg: TrainConfig, step: int) -> float:
    """One optimisation step on ``batch = (x, y, idx)``; returns its loss (refusing NaN)."""
    xb, yb, idx = batch
    logits, loss = model(xb, yb)
    loss = objective(logits, loss, idx) + model.aux_loss()  # + MoE load balancing
    return optimizer_step(loss, opt, sched, model.parameters(), train_cfg, step)


def optimizer_step(loss: torch.Tensor, opt, sched, params, cfg, step: int) -> float:
    """Backward, clip (``cfg.grad_clip``), step the optimizer and schedule; returns the loss.
    A non-finite loss stops the run with an error that names the step and ``cfg.lr``."""
    value = loss.item()
    if not math.isfinite(value):
        raise InputError(f"the training loss became {value} at step {step + 1}; "
                         f"lower lr (now {cfg.lr}) or check the data")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    sched.step()
    return value


def _train(model_cfg, train_cfg, task, out_dir, ckpt_path, resume, device, cost_options,
           objective) -> dict:
    from qllm.cost.ledger import run_ledger

    model = HybridTransformer(model_cfg).to(device)
    n_train = len(task.x_train)
    steps_per_epoch = math.ceil(n_train / train_cfg.batch_size)
    total_steps = steps_per_epoch * train_cfg.epochs
    if train_cfg.max_steps:
        total_steps = min(total_steps, train_cfg.max_steps)
    opt, sched = _optimizer(model, train_cfg, total_steps)
    seed_layers(model, train_cfg.seed)  # shot samplers, SPSA directions, Aer job seeds
    run = (restore_run(ckpt_path, model, opt, sched, model_cfg, train_cfg, total_steps, device)
           if resume else RunProgress())

    def checkpoint():
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, run_state(model, opt, sched, run, time.perf_counter() - t0,
                                              model_cfg, train_cfg))

    ledger = run_ledger(model)  # what the quantum layers actually run, step by step
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=total_steps, initial=run.step, desc=f"train {task.name}",
               disable=not train_cfg.progress, leave=False)
    while run.step < total_steps:
        epoch, first = divmod(run.step, steps_per_epoch)
        g = torch.Generator().manual_seed(fold(train_cfg.seed * 100_003 + epoch))
        order = torch.randperm(n_train, generator=g)
        for b in range(first, steps_per_epoch):
            idx = order[b * train_cfg.batch_size:(b + 1) * train_cfg.batch_size]
            batch = (task.x_train[idx].to(device), task.y_train[idx].to(device), idx)
            with ledger.step("train"):
                run.losses.append(_step(model, opt, sched, objective, batch, train_cfg, run.step))
            run.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{run.losses[-1]:.3f}")
            at_epoch_end = run.step % steps_per_epoch == 0 or run.step >= total_steps
            # at an epoch's end the checkpoint comes after the evaluation, below
            if train_cfg.checkpoint_every and run.step % train_cfg.checkpoint_every == 0 \
                    and not at_epoch_end:
                checkpoint()
            if run.step >= total_steps:
                break
        if run.step % steps_per_epoch == 0 or run.step >= total_steps:
            if (epoch + 1) % train_cfg.eval_every == 0 or run.step >= total_steps:
                _record_epoch(model, task, ledger, run, epoch, bar)
            checkpoint()
    bar.close()
    run.wall += time.perf_counter() - t0
    results = _results(model, task, ledger, run, model_cfg, train_cfg)
    results["cost"] = _run_cost(model, task, ledger, cost_options, train_cfg, steps_per_epoch,
                                total_steps)
    if out_dir is not None:
        write_json(out_dir / "results.json", results)
    results["model"] = model
    return results


def _run_cost(model, task: TaskData, ledger, cost_options, train_cfg: TrainConfig,
              steps_per_epoch: int, total_steps: int) -> dict | None:
    """The cost report projected from this run's own settings, with what it counted beside it."""
    from qllm.cost.ledger import run_cost_options

    cost = _cost(model, task, run_cost_options(model, model.config.quantum.gradient, cost_options),
                 batch_size=train_cfg.batch_size, steps_per_epoch=steps_per_epoch,
                 epochs=train_cfg.epochs, steps=total_steps)
    if cost is not None and ledger.records is not None:
        # counted in this process (a resumed run counts the steps after the checkpoint)
        cost["measured"] = ledger.summary()
    return cost


def _record_epoch(model, task: TaskData, ledger, run: RunProgress, epoch: int, bar) -> None:
    """A learning-curve point on the validation split (the test split is read once, at the end)."""
    with ledger.step("inference"):
        metrics = evaluate(model, task, "val") if task.x_val is not None else {}
    run.history.append({"epoch": epoch + 1, "step": run.step, "train_loss": run.losses[-1],
                        **{f"val_{k}": v for k, v in metrics.items()}})
    bar.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in run.history[-1].items()
                                                  if k != "epoch"))


def _results(model, task: TaskData, ledger, run: RunProgress, model_cfg, train_cfg) -> dict:
    """The run's record: the final test and validation metrics, curves, config, seed, versions."""
    with ledger.step("inference"):
        final = evaluate(model, task)  # the only look at the test split
        validation = evaluate(model, task, "val") if task.x_val is not None else None
    return {
        "task": task.name, "metric": task.metric, "seed": train_cfg.seed,
        "model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict(),
        "params": {"total": model.num_params(), "quantum": model.num_params(quantum_only=True)},
        "final": final, "validation": validation, "history": run.history, "losses": run.losses,
        "wall_time_s": run.wall, "steps": run.step, "versions": versions(), "machine": machine(),
    }


def _cost(model: HybridTransformer, task: TaskData, options: dict, **run) -> dict | None:
    """The cost report of this run (``run``: its batch size, steps per epoch and epochs, so the
    per-epoch and full-run projections are this run's). Qiskit is a core dependency, but a
    stripped environment (e.g. a GPU image with torch and PennyLane only) should still train:
    then the report is None."""
    from qllm.cost import cost_report

    try:
        return cost_report(model, seq_len=task.seq_len, **options, **run).to_dict()
    except ImportError as e:
        warnings.warn(f"no cost report: {e}", stacklevel=2)
        return None
