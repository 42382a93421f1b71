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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    path = Path(args.config)
    if path.suffix == ".pt":
        model, _ = load_model(path)
    else:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        model = HybridTransformer(ModelConfig.from_dict(raw.get("model_config", raw.get("model", raw))))
    kwargs = {k: getattr(args, k) for k in ("shots", "target", "gradient", "profile")
              if getattr(args, k) is not None}
    report = model.cost_report(seq_len=args.seq_len, **kwargs)
    print(report.to_json() if args.json else report)
    return 0
