"""``qllm train``: train one model, or resume one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qllm.cli.common import DEVICE_HELP, check_int, choices, configs_from_args, resume_configs
from qllm.errors import CheckpointError, ConfigError

DEFAULT_OUT = Path("runs/latest")
RUN_FILES = ("checkpoint.pt", "results.json")


def add_parser(sub) -> None:
    from qllm.data import TASKS

    p = sub.add_parser(
        "train", help="train one model",
        description="Train one model. With no arguments: a classical model on the digits task, "
                    f"written to {DEFAULT_OUT} (which each run without --out replaces). An "
                    "explicit --out that already holds a run is refused unless --resume or "
                    "--overwrite.")
    p.add_argument("--config", help="JSON with 'model' and 'train' sections")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field: ffn=quantum, quantum.n_qubits=6, train.lr=0.001; a "
                        "bare key means the config that has it (task=sort is the data task, "
                        "task=lm the model head; model.task / train.task say so explicitly)")
    p.add_argument("--task", help=f"data task: {choices(TASKS)} (default digits)")
    p.add_argument("--epochs", type=int, help="epochs, an int >= 1 (default 10)")
    p.add_argument("--seed", type=int, help="seed of everything drawn, an int in [0, 2**63 - 1]")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--out", help=f"run folder for checkpoint.pt and results.json (default "
                                 f"{DEFAULT_OUT}, replaced by each run that gives no --out)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from its checkpoint.pt (its settings; flags "
                        "that would change them are refused)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in OUT")
    p.set_defaults(func=run)


def _claim_folder(out: Path, explicit: bool, overwrite: bool) -> None:
    """Refuse to replace a run in ``out`` unless told to; clear it when told."""
    if not out.is_dir():
        return
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found:
        return
    if explicit and not overwrite:
        raise ConfigError(f"--out {str(out)!r} already holds a run ({', '.join(found)}); add "
                          "--resume to continue it, --overwrite to replace it, or give another "
                          "--out")
    print(f"qllm: replacing the run in {out}", file=sys.stderr)
    for name in found:
        (out / name).unlink()


def _interrupted(out: Path) -> int:
    """One line on Ctrl-C: where the last checkpoint is and how to resume it."""
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        step = ""
        try:
            from qllm.checkpoint import load_checkpoint

            step = f" (step {load_checkpoint(ckpt)['step']})"
        except Exception:  # noqa: BLE001 - the message must come out whatever the file holds
            pass
        print(f"\nqllm: interrupted; the last checkpoint is {ckpt}{step}; resume with: "
              f"qllm train --out {out} --resume", file=sys.stderr)
    else:
        print(f"\nqllm: interrupted before the first checkpoint; nothing to resume in {out}",
              file=sys.stderr)
    return 130


def run(args) -> int:
    from qllm.runlock import RunLock
    from qllm.train import train

    check_int("--epochs", args.epochs)
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: continue the run, or "
                          "replace it")
    out = Path(args.out) if args.out is not None else DEFAULT_OUT
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    task = None
    if args.resume:
        if not (out / "checkpoint.pt").is_file():
            raise CheckpointError(f"--resume needs a checkpoint at {str(out / 'checkpoint.pt')!r}, "
                                  "found none")
    else:
        model_cfg, train_cfg = configs_from_args(args)  # bad settings fail before any file is made
    try:
        with RunLock(out):
            if args.resume:
                model_cfg, train_cfg, task = resume_configs(out, args)
            else:
                _claim_folder(out, explicit=args.out is not None, overwrite=args.overwrite)
            res = train(model_cfg, train_cfg, out_dir=out, resume=args.resume, task=task)
    except KeyboardInterrupt:
        return _interrupted(out)
    print(json.dumps({"final": res["final"], "params": res["params"],
                      "wall_time_s": round(res["wall_time_s"], 1), "out": str(out)}, indent=2))
    return 0
