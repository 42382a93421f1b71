"""A training run's state between processes: what its checkpoint holds and how a resume restores
it (weights, optimizer, schedule, step, curves, RNG and private generator states), refusing a
checkpoint written by another config."""

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
from qllm.results import versions
from qllm.rng import generator_states, set_generator_states

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "step", "history", "losses", "wall_time_s",
                   "rng", "generators", "model_config", "train_config")


@dataclass
class RunProgress:
    """Where a run is: what a checkpoint saves and a resume restores, beside the weights."""

    step: int = 0
    history: list = field(default_factory=list)  # one entry per evaluated epoch
    losses: list = field(default_factory=list)  # the training loss of every step
    wall: float = 0.0  # training seconds before this process took over


def restore_run(path: Path, model, opt, sched, model_cfg, train_cfg, total_steps: int,
             device) -> RunProgress:
    """Weights, optimizer, schedule, RNG and generator states from the run's checkpoint."""
    state = load_checkpoint(path, map_location=device, require=CHECKPOINT_KEYS)
    check_same_config(path, "model config", state["model_config"], model_cfg.to_dict())
    check_same_config(path, "train config", state["train_config"], train_cfg.to_dict(),
                      ignore=RESUMABLE_CHANGES)
    try:
        model.load_state_dict(state["model"])
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
    unmatched = set_generator_states(model, state["generators"])
    if unmatched:
        raise CheckpointError(f"checkpoint {str(path)!r} holds generator states "
                              f"{unmatched} that this model does not have")
    return done


def run_state(model, opt, sched, run: RunProgress, seconds: float, model_cfg, train_cfg) -> dict:
    """What a checkpoint holds (``CHECKPOINT_KEYS``): tensors and plain values only."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "step": run.step, "history": run.history,
            "losses": run.losses, "wall_time_s": run.wall + seconds, "rng": rng_state(),
            "generators": generator_states(model), "model_config": model_cfg.to_dict(),
            "train_config": train_cfg.to_dict(), "versions": versions()}
