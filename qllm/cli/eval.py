"""``qllm eval``: evaluate a checkpoint exactly and on another backend."""

from __future__ import annotations

import json
import sys

from qllm.cli.common import backend_help, check_int, load_model
from qllm.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint, exactly and on another backend")
    p.add_argument("checkpoint", help="a checkpoint.pt, or a run folder of `qllm train`")
    p.add_argument("--backend", help=f"also evaluate on this {backend_help()}")
    p.add_argument("--shots", type=int, help="shots per circuit on --backend, an int in "
                                             "[1, 2**53] (default: exact)")
    p.add_argument("--seed", type=int, help="seed of --backend's shot sampler, an int in "
                                            "[0, 2**63 - 1]")
    p.add_argument("--limit", type=int, help="evaluate only the first N test sequences, N >= 1")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per batch, >= 1")
    p.set_defaults(func=run)


def _check_args(args) -> None:
    from qllm.engine.sampling import MAX_SHOTS
    from qllm.seeds import SEED_MAX

    check_int("--limit", args.limit)
    check_int("--batch-size", args.batch_size)
    check_int("--shots", args.shots, 1, MAX_SHOTS)
    check_int("--seed", args.seed, 0, SEED_MAX)
    for flag in ("shots", "seed"):
        if getattr(args, flag) is not None and not args.backend:
            raise ConfigError(f"--{flag} applies to --backend only (the first row is exact); "
                              f"add --backend, e.g. --backend aer --{flag} {getattr(args, flag)}")


def run(args) -> int:
    from qllm.data import load_task
    from qllm.train import evaluate

    _check_args(args)
    model, train_cfg = load_model(args.checkpoint)
    task = load_task(train_cfg.task, **train_cfg.task_options)
    if args.limit:
        task.x_test, task.y_test = task.x_test[:args.limit], task.y_test[:args.limit]
    exact = evaluate(model, task, batch_size=args.batch_size)
    rows = [("exact (torch)", exact)]
    if args.backend:
        options = {} if args.shots is None else {"shots": args.shots}
        if args.seed is not None:
            options["seed"] = args.seed
        model.set_backend(args.backend, **options)  # a bad name or option fails here
        name = f"{args.backend}" + (f", {args.shots} shots" if args.shots else "")
        if model.config.quantum_sublayers:
            rows.append((name, evaluate(model, task, batch_size=args.batch_size)))
        else:
            from qllm.backends import get_backend

            get_backend(args.backend, **options)  # no layer checked the name: check it here
            print(f"qllm: note: this model is classical (attn and ffn 'classical'): nothing "
                  f"quantum ran on {args.backend}; its row repeats the exact one", file=sys.stderr)
            rows.append((f"{name} (classical: nothing quantum)", exact))
    metric = "perplexity" if task.metric == "perplexity" else "accuracy"
    print(f"{'backend':<40} {metric:>10}   ({len(task.x_test)} test sequences)")
    for name, m in rows:
        print(f"{name:<40} {m[metric]:>10.4f}")
    print(json.dumps({name: m for name, m in rows}))
    return 0
