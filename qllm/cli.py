"""Command line: ``qllm train | eval | bench | cost``.

    qllm bench --preset quick                       # classical vs hybrid on digits (main job)
    qllm train --task digits --set ffn=quantum --out runs/qffn
    qllm train --out runs/qffn --resume             # continue from runs/qffn/checkpoint.pt
    qllm eval runs/qffn/checkpoint.pt --backend aer:fake_manila --shots 4096
    qllm cost runs/qffn/results.json                # or a JSON model config
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qllm.errors import ConfigError, QllmError


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _configs(args):
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
            train_over[key[6:]] = _parse_value(value)
        else:
            model_over[key.removeprefix("model.")] = _parse_value(value)
    for flag in ("task", "epochs", "seed", "device"):
        if getattr(args, flag, None) is not None:
            train_over[flag] = getattr(args, flag)
    return model.override(model_over), train.override(train_over)


def cmd_train(args) -> int:
    from qllm.train import train

    if args.resume:
        from qllm.checkpoint import load_checkpoint
        from qllm.config import ModelConfig, TrainConfig

        state = load_checkpoint(Path(args.out) / "checkpoint.pt",
                                require=("model_config", "train_config"))
        model_cfg = ModelConfig.from_dict(state["model_config"])
        train_cfg = TrainConfig.from_dict(state["train_config"])
    else:
        model_cfg, train_cfg = _configs(args)
    res = train(model_cfg, train_cfg, out_dir=args.out, resume=args.resume)
    print(json.dumps({"final": res["final"], "params": res["params"],
                      "wall_time_s": round(res["wall_time_s"], 1), "out": args.out}, indent=2))
    return 0


def _load_model(path):
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


def cmd_eval(args) -> int:
    from qllm.data import load_task
    from qllm.train import evaluate

    model, train_cfg = _load_model(args.checkpoint)
    task = load_task(train_cfg.task, **train_cfg.task_options)
    if args.limit:
        task.x_test, task.y_test = task.x_test[:args.limit], task.y_test[:args.limit]
    exact = evaluate(model, task)
    rows = [("exact (torch)", exact)]
    if args.backend:
        options = {} if args.shots is None else {"shots": args.shots}
        if args.seed is not None:
            options["seed"] = args.seed
        model.set_backend(args.backend, **options)
        rows.append((f"{args.backend}" + (f", {args.shots} shots" if args.shots else ""),
                     evaluate(model, task, batch_size=args.batch_size)))
    metric = "perplexity" if task.metric == "perplexity" else "accuracy"
    print(f"{'backend':<40} {metric:>10}   ({len(task.x_test)} test sequences)")
    for name, m in rows:
        print(f"{name:<40} {m[metric]:>10.4f}")
    print(json.dumps({name: m for name, m in rows}))
    return 0


def cmd_bench(args) -> int:
    from qllm.bench import dry_run, run_preset

    tasks = args.tasks.split(",") if args.tasks else None
    if args.dry_run:
        print(dry_run(args.preset, tasks, args.text))
        return 0
    if args.estimate:
        from qllm.bench import estimate

        print(estimate(args.preset, tasks, args.text, workers=args.workers or 1))
        return 0
    run_preset(args.preset, out_dir=args.out, progress=not args.no_progress,
               executor=args.executor, workers=args.workers, ray_address=args.ray_address,
               tasks=tasks, text=args.text, noise=not args.no_noise)
    return 0


def cmd_cost(args) -> int:
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    path = Path(args.config)
    if path.suffix == ".pt":
        model, _ = _load_model(path)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qllm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one model")
    t.add_argument("--config", help="JSON with 'model' and 'train' sections")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field: ffn=quantum, quantum.n_qubits=6, train.lr=0.001")
    t.add_argument("--task")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device")
    t.add_argument("--out", default="runs/latest", help="folder for checkpoint.pt and results.json")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint, exactly and on another backend")
    e.add_argument("checkpoint")
    e.add_argument("--backend", help="e.g. aer:fake_manila, aer, pennylane:default.qubit")
    e.add_argument("--shots", type=int)
    e.add_argument("--seed", type=int, help="seed of the shot sampler")
    e.add_argument("--limit", type=int, help="evaluate only the first N test sequences")
    e.add_argument("--batch-size", type=int, default=64)
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="run a benchmark preset")
    b.add_argument("--preset", default="quick")
    b.add_argument("--out", default="results")
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--executor", default="local", choices=("local", "ray", "serial"),
                   help="local process pool (default), a Ray cluster, or this process")
    b.add_argument("--workers", type=int, help="pool size (default: every core)")
    b.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else local)")
    b.add_argument("--tasks", help="comma-separated subset of the preset's tasks")
    b.add_argument("--text", metavar="PATH", help="also benchmark character-level LM on this file")
    b.add_argument("--no-noise", action="store_true", help="skip the noise study")
    b.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    b.add_argument("--estimate", action="store_true",
                   help="time a few steps of every model and project the preset's wall time")
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("cost", help="print the resource-cost report of a model")
    c.add_argument("config", help="a model config JSON, a results.json or a checkpoint.pt")
    c.add_argument("--seq-len", type=int)
    c.add_argument("--shots", type=int)
    c.add_argument("--target")
    c.add_argument("--gradient")
    c.add_argument("--profile")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cost)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QllmError as e:
        print(f"qllm: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
