"""``qllm train``: train one model, or resume one."""

from __future__ import annotations

import json
from pathlib import Path

from qllm.cli.common import configs_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one model")
    p.add_argument("--config", help="JSON with 'model' and 'train' sections")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field: ffn=quantum, quantum.n_qubits=6, train.lr=0.001")
    p.add_argument("--task")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device")
    p.add_argument("--out", default="runs/latest", help="folder for checkpoint.pt and results.json")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.set_defaults(func=run)


def run(args) -> int:
    from qllm.train import train

    if args.resume:
        from qllm.checkpoint import load_checkpoint
        from qllm.config import ModelConfig, TrainConfig

        state = load_checkpoint(Path(args.out) / "checkpoint.pt",
                                require=("model_config", "train_config"))
        model_cfg = ModelConfig.from_dict(state["model_config"])
        train_cfg = TrainConfig.from_dict(state["train_config"])
    else:
        model_cfg, train_cfg = configs_from_args(args)
    res = train(model_cfg, train_cfg, out_dir=args.out, resume=args.resume)
    print(json.dumps({"final": res["final"], "params": res["params"],
                      "wall_time_s": round(res["wall_time_s"], 1), "out": args.out}, indent=2))
    return 0
