"""``qllm cost``: the resource-cost report of a config, results.json or checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from qllm.cli.common import load_model
from qllm.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("cost", help="print the resource-cost report of a model")
    p.add_argument("config", help="a model config JSON, a results.json or a checkpoint.pt")
    p.add_argument("--seq-len", type=int)
    p.add_argument("--shots", type=int)
    p.add_argument("--target")
    p.add_argument("--gradient")
    p.add_argument("--profile")
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


def run(args) -> int:
    from qllm.config import ModelConfig
    from qllm.cost.report import run_settings
    from qllm.model import HybridTransformer

    path = Path(args.config)
    raw = {}
    if path.suffix == ".pt":
        model, _ = load_model(path)
    else:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        model = HybridTransformer(ModelConfig.from_dict(raw.get("model_config", raw.get("model", raw))))
    kwargs = run_settings(raw)  # a results.json: its own run
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
    report = model.cost_report(seq_len=args.seq_len, **kwargs)
    print(report.to_json() if args.json else report)
    return 0
