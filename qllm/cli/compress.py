"""``qllm compress CHECKPOINT``: prune and quantize a trained model's circuits, write the new
checkpoint and a report (accuracy, gates and depth on a target, shots, projected QPU seconds).

    qllm compress runs/qffn/checkpoint.pt --tol 0.2 --bits 4 --out runs/qffn-small
    qllm compress runs/qffn/checkpoint.pt --bits 3 --qat-steps 100 --out runs/qffn-qat
"""

from __future__ import annotations

import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("compress", help="prune and quantize a checkpoint's circuits, with a report")
    p.add_argument("checkpoint")
    p.add_argument("--tol", type=float, help="prune rotations within TOL radians of the "
                   "identity (0..pi)")
    p.add_argument("--bits", type=int, help="quantize angles to BITS bits (1..16)")
    p.add_argument("--qat-steps", type=int, default=0,
                   help="quantization-aware fine-tuning steps (needs --bits)")
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate")
    p.add_argument("--seed", type=int, default=0, help="fine-tuning data order")
    p.add_argument("--target", default="ibm_torino", help="transpile target of the gate counts")
    p.add_argument("--shots", type=int, default=1024, help="shots per circuit")
    p.add_argument("--profile", default="ibm_heron", help="QPU profile of the time projection")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt and compression.json")
    p.set_defaults(func=run)


def run(args) -> int:
    from qllm.compress import compress_model, format_table, layer_rows, model_row, save_compressed
    from qllm.compress.apply import load_compressed
    from qllm.data import load_task
    from qllm.results import versions, write_json

    t0 = time.perf_counter()
    model, train_cfg = load_compressed(args.checkpoint)
    task = load_task(train_cfg.task, **train_cfg.task_options)
    small, results = compress_model(model, tol=args.tol, bits=args.bits,
                                    qat_steps=args.qat_steps, task=task, lr=args.lr,
                                    seed=args.seed, batch_size=train_cfg.batch_size,
                                    progress=True)
    opts = {"target": args.target, "shots": args.shots, "profile": args.profile,
            "batch_size": train_cfg.batch_size, "epochs": train_cfg.epochs}
    rows = {"original": model_row(model, task, **opts), "compressed": model_row(small, task, **opts)}
    settings = {"tol": args.tol, "bits": args.bits, "qat_steps": args.qat_steps, "lr": args.lr,
                "seed": args.seed, "source": str(args.checkpoint), **opts}
    out = Path(args.out)
    save_compressed(out / "checkpoint.pt", small, train_cfg.to_dict(), settings)
    report = {"settings": settings, "rows": rows, "layers": layer_rows(results),
              "versions": versions(), "wall_time_s": time.perf_counter() - t0}
    write_json(out / "compression.json", report)
    print(format_table(rows))
    print(f"wrote {out / 'checkpoint.pt'} and {out / 'compression.json'}")
    return 0
