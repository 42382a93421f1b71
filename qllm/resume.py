"""A training run's state between processes: what its checkpoint holds and how a resume restores
it (weights, optimizer, schedule, step, curves, RNG states; the quantum layers' private
generator states are in the model's state dict), refusing a checkpoint written by another
config. Checkpoints of the earlier layout (a separate path-keyed ``"generators"`` dict) still
resume exactly: ``qllm.layer_rng.upgrade_generators`` moves their states into the model's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qllm.checkpoint import (
    RESUMABLE_CHANGES,
    check_same_config,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from qllm.errors import CheckpointError
from qllm.layer_rng import with_upgraded_generators
from qllm.results import versions

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "step", "history", "losses", "wall_time_s",
                   "rng", "model_config", "train_config")


@dataclass
class RunProgress:
    """Where a run is: what a checkpoint saves and a resume restores, beside the weights."""

    step: int = 0
    history: list = field(default_factory=list)  # one entry per evaluated epoch
    losses: list = field(default_factory=list)  # the training loss of every step
    wall: float = 0.0  # training seconds before this process took over


def restore_run(path: Path, model, opt, sched, model_cfg, train_cfg, total_steps: int,
             device) -> RunProgress:
    """Weights (with generator states), optimizer, schedule and RNG from the run's checkpoint."""
    state = load_checkpoint(path, map_location=device, require=CHECKPOINT_KEYS)
    check_same_config(path, "model config", state["model_config"], model_cfg.to_dict())
    check_same_config(path, "train config", state["train_config"], train_cfg.to_dict(),
                      ignore=RESUMABLE_CHANGES)
    weights = state["model"]
    if "generators" in state:  # the earlier layout
        weights = with_upgraded_generators(weights, state["generators"], path)
    try:
        model.load_state_dict(weights)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match the model: "
                              f"{str(e).splitlines()[0][:300]}") from None
    done = RunProgress(int(state["step"]), list(state["history"]), list(state["losses"]),
                     float(state["wall_time_s"]))
    if not 0 <= done.step <= total_steps:
        raise CheckpointError(f"checkpoint {str(path)!r} is at step {done.step}, outside "
                              f"0..{total_steps}")
    set_rng_state(state["rng"])
    return done


def run_state(model, opt, sched, run: RunProgress, seconds: float, model_cfg, train_cfg) -> dict:
    """What a checkpoint holds (``CHECKPOINT_KEYS``): tensors and plain values only."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "step": run.step, "history": run.history,
            "losses": run.losses, "wall_time_s": run.wall + seconds, "rng": rng_state(),
            "model_config": model_cfg.to_dict(),
            "train_config": train_cfg.to_dict(), "versions": versions()}
