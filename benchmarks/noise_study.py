"""Noise study on its own: a trained hybrid checkpoint's test accuracy with exact expectation
values, versus shots (native engine's sampler, several sampler seeds), and under a fake IBM
device's calibrated noise (Qiskit Aer), on the first N test sequences.

``qllm bench`` runs this study for the best digits hybrid of its preset (results under
``OUT/<preset>/noise/``). Use this script for any other checkpoint:

    python benchmarks/noise_study.py results/quick/work/digits-qffn-he-4q-seed0/checkpoint.pt \
        --n-test 100 --shots 8192 2048 512 128 --devices aer:fake_manila --out results/noise.json
"""

from __future__ import annotations

import argparse
import json

from qllm.checkpoint import load_checkpoint
from qllm.config import ModelConfig, TrainConfig
from qllm.data import load_task
from qllm.experiments.aggregate import noise_markdown, noise_rows
from qllm.experiments.noise_study import noise_study
from qllm.model import HybridTransformer
from qllm.results import machine, versions, write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--n-test", type=int, default=100, help="evaluate the first N test sequences")
    p.add_argument("--shots", type=int, nargs="+", default=[8192, 2048, 512, 128])
    p.add_argument("--repeats", type=int, default=3, help="sampler seeds per shot count")
    p.add_argument("--devices", nargs="*", default=["aer:fake_manila"])
    p.add_argument("--device-shots", type=int, default=4096)
    p.add_argument("--out", default="results/noise_study.json")
    args = p.parse_args(argv)

    state = load_checkpoint(args.checkpoint)
    model = HybridTransformer(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    tcfg = TrainConfig.from_dict(state["train_config"])
    task = load_task(tcfg.task, **tcfg.task_options)
    n = min(args.n_test, len(task.x_test))
    task.x_test, task.y_test = task.x_test[:n], task.y_test[:n]
    rows = noise_study(model, task, [None, *args.shots], args.repeats, args.devices,
                       args.device_shots)
    record = {"job": {"run_id": args.checkpoint, "label": tcfg.task, "source_run": args.checkpoint},
              "task": tcfg.task, "n_test": n, "rows": rows, "versions": versions(),
              "machine": machine()}
    write_json(args.out, record)
    print(noise_markdown(noise_rows([record])))
    print(json.dumps({"out": args.out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
