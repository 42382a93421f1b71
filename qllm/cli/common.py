"""What several subcommands share: configs from --config/--set (fresh or on top of a checkpoint's
for --resume), loading a checkpoint, argument checks, and help text built from the registries."""

from __future__ import annotations

import json
from pathlib import Path

from qllm.errors import CheckpointError, ConfigError
from qllm.validate import is_int

# Fields of TrainConfig a resumed run may change (they do not change what is computed).
RESUMABLE_CHANGES = ("progress", "device")


# -- help text from the registries -------------------------------------------------------------
def choices(names) -> str:
    return ", ".join(sorted(names))


def backend_help() -> str:
    from qllm.backends import BACKENDS
    from qllm.hardware.fake_devices import available_fake_backends

    fakes = available_fake_backends()
    kinds = ", ".join(f"{k}:<device>" if k == "pennylane" else k for k in BACKENDS)
    return (f"backend: {kinds}, or aer:<fake device> with one of {len(fakes)} fake IBM devices "
            f"({', '.join(fakes[:4])}, ...)")


DEVICE_HELP = "torch device: cpu (default), cuda or cuda:N"


# -- argument checks ---------------------------------------------------------------------------
def check_int(flag: str, value, minimum: int = 1, maximum: int | None = None) -> None:
    """ConfigError naming ``flag`` unless ``value`` is None or an int in [minimum, maximum]."""
    if value is None:
        return
    if not is_int(value) or value < minimum or (
            maximum is not None and value > maximum):
        allowed = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]"
        raise ConfigError(f"{flag} must be {allowed}, got {value!r}")


def read_json_object(path: Path, what: str) -> dict:
    """The JSON object in ``path``; ConfigError naming the file if it is missing, a folder,
    empty, binary, not JSON or not an object."""
    if not path.exists():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder; give a JSON file")
    try:
        raw = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {str(path)!r} is a binary file, not JSON") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what} {str(path)!r} is not valid JSON ({e.msg} at line {e.lineno})"
                          + ("; it is empty" if not path.stat().st_size else "")) from None
    except OSError as e:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {e.strerror}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {str(path)!r} holds a JSON {type(raw).__name__}; it must hold "
                          "a JSON object")
    return raw


def _section(raw: dict, names: tuple[str, ...], path: str) -> dict:
    for name in names:
        if name in raw:
            if not isinstance(raw[name], dict):
                raise ConfigError(f"--config {path!r}: section {name!r} must be a JSON object of "
                                  f"fields, got {raw[name]!r}")
            return dict(raw[name])
    return {}


# -- --config / --set / flags --------------------------------------------------------------------
def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _target(key: str, value) -> str:
    """'model' or 'train' for a bare --set key: the config that has the field; for ``task``,
    which both have, the value decides (a data task name, or classify/lm for the model head)."""
    from qllm.config import ModelConfig, TrainConfig
    from qllm.data import TASKS

    field = key.split(".", 1)[0]
    in_model = field in ModelConfig.__dataclass_fields__
    in_train = field in TrainConfig.__dataclass_fields__
    if in_model and in_train:  # only "task"
        if value in TASKS:
            return "train"
        if value in ("classify", "lm"):
            return "model"
        raise ConfigError(f"--set {key}={value!r}: a bare 'task' is either the data task "
                          f"(train.task: {choices(TASKS)}) or the model head (model.task: "
                          "classify, lm)")
    if not (in_model or in_train):
        raise ConfigError(f"--set {key}: no such field; model fields: "
                          f"{choices(ModelConfig.__dataclass_fields__)}; train fields: "
                          f"{choices(TrainConfig.__dataclass_fields__)}")
    return "train" if in_train and not in_model else "model"


def overrides_from_args(args) -> tuple[dict, dict]:
    """``(model_overrides, train_overrides)`` from --set items and the --task/--epochs/--seed/
    --device flags. Keys: ``train.x``, ``model.x``, or bare (the config that has the field)."""
    model_over, train_over = {}, {}
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        value = parse_value(text)
        if key.startswith("train."):
            train_over[key[6:]] = value
        elif key.startswith("model."):
            model_over[key[6:]] = value
        elif _target(key, value) == "train":
            train_over[key] = value
        else:
            model_over[key] = value
    for flag in ("task", "epochs", "seed", "device"):
        if getattr(args, flag, None) is not None:
            train_over[flag] = getattr(args, flag)
    return model_over, train_over


def configs_from_args(args, base=None):
    """ModelConfig and TrainConfig from --config, --set and flags, applied on top of ``base``
    (a ``(ModelConfig, TrainConfig)`` pair, e.g. a checkpoint's) or of the defaults."""
    from qllm.config import ModelConfig, TrainConfig

    model_d, train_d = {}, {}
    if args.config:
        raw = read_json_object(Path(args.config), "--config")
        model_d = _section(raw, ("model", "model_config"), args.config)
        train_d = _section(raw, ("train", "train_config"), args.config)
        unknown = sorted(set(raw) - {"model", "model_config", "train", "train_config"})
        if unknown and not (model_d or train_d):
            raise ConfigError(f"--config {args.config!r} has no 'model' or 'train' section "
                              f"(it holds {unknown})")
    if base is None:
        model_d.setdefault("input_dim", 4)  # a placeholder: the task fills in the real fields
        model, train = ModelConfig.from_dict(model_d), TrainConfig.from_dict(train_d)
    else:
        model, train = base[0].override(model_d), base[1].override(train_d)
    model_over, train_over = overrides_from_args(args)
    return model.override(model_over), train.override(train_over)


def _flat(d: dict, prefix: str) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "task_options" and k != "backend_options":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resume_configs(out: Path, args):
    """The configs of the run in ``out`` with this command's --config/--set/flags applied, and
    its task; ConfigError listing every setting that would change what the run computes."""
    from qllm.checkpoint import load_checkpoint
    from qllm.config import ModelConfig, TrainConfig
    from qllm.data import load_task
    from qllm.train import model_config_for

    ckpt = out / "checkpoint.pt"
    state = load_checkpoint(ckpt, require=("model_config", "train_config"))
    saved = (ModelConfig.from_dict(state["model_config"]),
             TrainConfig.from_dict(state["train_config"]))
    model_cfg, train_cfg = configs_from_args(args, base=saved)
    task = load_task(train_cfg.task, **train_cfg.task_options)
    model_cfg = model_config_for(task, model_cfg)
    before = {**_flat(saved[0].to_dict(), "model."), **_flat(saved[1].to_dict(), "train.")}
    after = {**_flat(model_cfg.to_dict(), "model."), **_flat(train_cfg.to_dict(), "train.")}
    changed = [f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
               if before.get(k) != after.get(k) and k.removeprefix("train.")
               not in RESUMABLE_CHANGES]
    if changed:
        raise ConfigError(f"--resume continues the run in {str(out)!r} with the settings in its "
                          f"checkpoint, but this command changes {'; '.join(changed)}; drop those "
                          "flags, or start a new run with --overwrite or another --out")
    return model_cfg, train_cfg, task


# -- checkpoints -------------------------------------------------------------------------------
def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file from what the user gave: a run folder means its checkpoint.pt; a JSON
    file (a results.json) is refused with the command that reads it."""
    path = Path(path)
    if path.is_dir():
        if (path / "checkpoint.pt").is_file():
            return path / "checkpoint.pt"
        raise CheckpointError(f"{str(path)!r} is a folder without a checkpoint.pt; give a "
                              "checkpoint file or a run folder of `qllm train`")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
        if path.suffix == ".json" or head.startswith((b"{", b"[")):
            raise CheckpointError(
                f"{str(path)!r} is a results file (JSON), not a checkpoint; `qllm cost {path}` "
                f"reads it, and `qllm eval {path.parent / 'checkpoint.pt'}` evaluates its run")
    return path


def load_model(path):
    """``(model, TrainConfig)`` from a run folder or checkpoint, plain or compressed
    (``qllm compress``): one loader, so every command reads both."""
    from qllm.compress.apply import load_compressed

    path = checkpoint_path(path)
    try:
        return load_compressed(path)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match its model config: "
                              f"{str(e).splitlines()[0][:300]}") from None
