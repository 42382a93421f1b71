"""``qllm eval``: evaluate a checkpoint exactly and on another backend."""

from __future__ import annotations

import json

from qllm.cli.common import load_model


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint, exactly and on another backend")
    p.add_argument("checkpoint")
    p.add_argument("--backend", help="e.g. aer:fake_manila, aer, pennylane:default.qubit")
    p.add_argument("--shots", type=int)
    p.add_argument("--seed", type=int, help="seed of the shot sampler")
    p.add_argument("--limit", type=int, help="evaluate only the first N test sequences")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=run)


def run(args) -> int:
    from qllm.data import load_task
    from qllm.train import evaluate

    model, train_cfg = load_model(args.checkpoint)
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
