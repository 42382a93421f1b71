"""``qllm bench``: run a benchmark preset."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark preset")
    from qllm.experiments.bench import PRESET_NAMES

    p.add_argument("--preset", default="quick", choices=PRESET_NAMES,
                   help="tiny: a smoke test (a few steps, chance-level models); quick: 4 seeds, "
                        "minutes; full: 5 seeds, hours; the others: `qllm list presets` "
                        "(default: quick)")
    p.add_argument("--out", default="results")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--executor", default="local", choices=("local", "ray", "serial"),
                   help="local process pool (default), a Ray cluster, or this process")
    p.add_argument("--workers", type=int, help="pool size (default: every core)")
    p.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else local)")
    from qllm.experiments.bench import PRESET_TASKS

    p.add_argument("--tasks", help="comma-separated subset of the preset's tasks (quick: "
                                   f"{','.join(PRESET_TASKS['quick'])})")
    p.add_argument("--text", metavar="PATH", help="also benchmark character-level LM on this file")
    p.add_argument("--no-noise", action="store_true", help="skip the noise study")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.add_argument("--estimate", action="store_true",
                   help="time a few steps of every model and project the preset's wall time")
    p.set_defaults(func=run)


SMOKE_TEST = ("preset tiny is a smoke test: a few training steps per run, so every model is near "
              "chance level; its numbers, paired differences and parameter-match checks only show "
              "that the pipeline runs (use --preset quick for results)")


def run(args) -> int:
    from qllm.cli.common import check_int
    from qllm.experiments.bench import dry_run, run_preset

    check_int("--workers", args.workers)  # before any run: 0 or -1 used to pass silently
    tasks = args.tasks.split(",") if args.tasks else None
    if args.dry_run:
        print(dry_run(args.preset, tasks, args.text))
        return 0
    if args.estimate:
        from qllm.experiments.bench import estimate

        print(estimate(args.preset, tasks, args.text, workers=args.workers or 1))
        return 0
    if args.preset == "tiny":
        print(f"note: {SMOKE_TEST}", flush=True)
    run_preset(args.preset, out_dir=args.out, progress=not args.no_progress,
               executor=args.executor, workers=args.workers, ray_address=args.ray_address,
               tasks=tasks, text=args.text, noise=not args.no_noise)
    if args.preset == "tiny":
        print(f"note: {SMOKE_TEST}")
    return 0
