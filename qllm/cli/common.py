"""What several subcommands share: configs from --config/--set, and loading a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from qllm.errors import ConfigError


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def configs_from_args(args):
    from qllm.config import ModelConfig, TrainConfig

    model_d, train_d = {}, {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--config {args.config!r} cannot be read as JSON: {e}") from None
        model_d = raw.get("model", raw.get("model_config", {}))
        train_d = raw.get("train", raw.get("train_config", {}))
    model_d.setdefault("input_dim", 4)  # a placeholder: the task fills in the real input fields
    model = ModelConfig.from_dict(model_d)
    train = TrainConfig.from_dict(train_d)
    model_over, train_over = {}, {}
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        if key.startswith("train."):
            train_over[key[6:]] = parse_value(value)
        else:
            model_over[key.removeprefix("model.")] = parse_value(value)
    for flag in ("task", "epochs", "seed", "device"):
        if getattr(args, flag, None) is not None:
            train_over[flag] = getattr(args, flag)
    return model.override(model_over), train.override(train_over)


def load_model(path):
    from qllm.checkpoint import load_checkpoint
    from qllm.config import ModelConfig, TrainConfig
    from qllm.errors import CheckpointError
    from qllm.model import HybridTransformer

    state = load_checkpoint(path, require=("model", "model_config", "train_config"))
    model = HybridTransformer(ModelConfig.from_dict(state["model_config"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match its model config: "
                              f"{str(e).splitlines()[0][:300]}") from None
    return model, TrainConfig.from_dict(state["train_config"])
