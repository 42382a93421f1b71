"""``qllm finetune``: an adapter on a frozen pretrained backbone, or resume one."""

from __future__ import annotations

import json
from pathlib import Path

from qllm.cli.common import parse_value
from qllm.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a pretrained backbone with a (quantum) adapter")
    p.add_argument("--backbone", help="'minilm' or a local Hugging Face model folder")
    p.add_argument("--adapter", help="quantum_lora, lora, quantum_adapter, bottleneck, "
                                     "quantum_head, linear_head, mlp_head, full")
    p.add_argument("--task", help="stdlib_topics, meaning, text_classification")
    p.add_argument("--config", help="JSON of FinetuneConfig fields")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field: n_qubits=6, rank=8, train.lr=0.001, max_steps=50")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device")
    p.add_argument("--out", default="runs/finetune", help="folder for checkpoint.pt and "
                                                          "results.json")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--feature-cache", metavar="DIR",
                   help="folder of the head-only adapters' cached backbone features (default "
                        "$QLLM_FEATURE_CACHE, else ~/.cache/qllm/features)")
    p.set_defaults(func=run)


def config_from_args(args):
    from qllm.pretrained.config import FinetuneConfig

    d = {}
    if args.config:
        try:
            d = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--config {args.config!r} cannot be read as JSON: {e}") from None
    cfg = FinetuneConfig.from_dict(d)
    over = {}
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        over[key] = parse_value(value)
    for flag in ("backbone", "adapter", "task", "epochs", "seed", "device"):
        if getattr(args, flag, None) is not None:
            over[flag] = getattr(args, flag)
    return cfg.override(over)


def run(args) -> int:
    from qllm.pretrained.config import FinetuneConfig
    from qllm.pretrained.finetune import finetune

    if args.resume:
        from qllm.checkpoint import load_checkpoint

        state = load_checkpoint(Path(args.out) / "checkpoint.pt", require=("config",))
        cfg = FinetuneConfig.from_dict(state["config"])
    else:
        cfg = config_from_args(args)
    res = finetune(cfg, out_dir=args.out, resume=args.resume,
                   feature_cache_dir=args.feature_cache)
    print(json.dumps({"final": res["final"], "params": res["params"],
                      "wall_time_s": round(res["wall_time_s"], 1), "out": args.out}, indent=2))
    return 0
