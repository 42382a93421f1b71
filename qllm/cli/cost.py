"""``qllm cost``: the resource-cost report of a config, results.json or checkpoint."""

from __future__ import annotations

from pathlib import Path

from qllm.cli.common import check_int, choices, load_model, read_json_object
from qllm.errors import ConfigError


def add_parser(sub) -> None:
    from qllm.cost.ledger import GRADIENTS
    from qllm.cost.profiles import PROFILES
    from qllm.cost.targets import TARGETS

    p = sub.add_parser("cost", help="print the resource-cost report of a model")
    p.add_argument("config", help="a model config JSON, a results.json, a checkpoint.pt, or a "
                                  "run folder holding one of them")
    p.add_argument("--seq-len", type=int, help="tokens per sequence, 1..block_size (default "
                                               "block_size)")
    p.add_argument("--shots", type=int, help="shots per circuit, >= 1 (default: 1/eps^2)")
    p.add_argument("--target", help=f"transpile target: {choices(TARGETS)}")
    p.add_argument("--gradient", help=f"gradient method: {choices(GRADIENTS)} (default: each "
                                      "layer's own)")
    p.add_argument("--profile", help=f"hardware profiles, comma-separated: {choices(PROFILES)}")
    # what-if: a results.json projects its own run; these change it
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--steps-per-epoch", type=int, dest="steps_per_epoch")
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps", type=int, help="steps of the whole run (default: epochs x steps)")
    p.add_argument("--route", help="project as if run on this backend name, e.g. "
                   "'pennylane:qiskit.remote' (one job per circuit) or 'ibm:ibm_torino'")
    p.add_argument("--mitigation", help="with --route: none, readout, zne or readout+zne")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _resolve(path: Path) -> Path:
    """A run folder means its results.json (else its checkpoint.pt)."""
    if path.is_dir():
        for name in ("results.json", "checkpoint.pt"):
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"{str(path)!r} is a folder without results.json or checkpoint.pt; "
                          "give a model config JSON, a results.json or a checkpoint.pt")
    return path


def _model(path: Path):
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    if path.suffix == ".pt":
        return load_model(path)[0]
    raw = read_json_object(path, "config file")
    section = raw.get("model_config", raw.get("model", raw))
    if not isinstance(section, dict):
        raise ConfigError(f"config file {str(path)!r}: the model config must be a JSON object "
                          f"of ModelConfig fields, got {section!r}")
    return HybridTransformer(ModelConfig.from_dict(section))


def _what_if(args, path: Path) -> dict:
    """``cost_report`` options: a results.json's own run (``run_settings``), changed by flags."""
    from qllm.cost.ledger import run_settings

    kwargs = run_settings(read_json_object(path, "config file")) if path.suffix != ".pt" else {}
    if args.epochs is not None or args.steps_per_epoch is not None:
        kwargs.pop("steps", None)  # a what-if on epochs re-derives the run's steps
    kwargs.update({k: getattr(args, k) for k in ("shots", "target", "gradient", "profile",
                                                 "batch_size", "steps_per_epoch", "epochs",
                                                 "steps", "route")
                   if getattr(args, k) is not None})
    if args.mitigation is not None:
        if args.route is None:
            raise ConfigError("--mitigation needs --route (the backend it would run on)")
        kwargs["route_options"] = {"mitigation": args.mitigation}
    return kwargs


def run(args) -> int:
    model = _model(_resolve(Path(args.config)))
    check_int("--seq-len", args.seq_len, 1, model.config.block_size)
    check_int("--shots", args.shots)
    for flag in ("batch_size", "steps_per_epoch", "epochs", "steps"):
        check_int("--" + flag.replace("_", "-"), getattr(args, flag))
    kwargs = _what_if(args, _resolve(Path(args.config)))
    report = model.cost_report(seq_len=args.seq_len, **kwargs)
    print(report.to_json() if args.json else report)
    return 0
