"""What reliability costs: the atomic checkpoint writer (temporary file, fsync, rename, folder
fsync, sweep) against a bare ``torch.save`` and against ``torch.save`` + fsync, loading with the non-finite check against a bare
``torch.load(weights_only=True)``, taking and releasing a run lock, and SIGKILLs landing inside
saves (every checkpoint must still load; no temporary may survive the next save).

    .venv/bin/python benchmarks/reliability.py            # prints a table, writes JSON

The two writers (and the two loaders) alternate in one loop, so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from qllm.checkpoint import load_checkpoint, save_checkpoint
from qllm.config import ModelConfig
from qllm.model import HybridTransformer
from qllm.results import machine, versions, write_json
from qllm.runlock import RunLock


def model_state(n_embd: int) -> dict:
    """A checkpoint-shaped state: a hybrid digits model's weights and AdamW-sized moments."""
    cfg = ModelConfig(input_dim=4, n_classes=10, n_embd=n_embd, ffn="quantum")
    weights = HybridTransformer(cfg).state_dict()
    moments = {k: torch.zeros_like(v) for k, v in weights.items()}
    return {"model": weights, "exp_avg": moments, "exp_avg_sq": dict(moments), "step": 1}


def time_writers(state: dict, folder: Path, repeats: int) -> dict:
    atomic, plain, synced = [], [], []
    for i in range(repeats):
        t = time.perf_counter()
        save_checkpoint(folder / "atomic.pt", {**state, "step": i})
        atomic.append(time.perf_counter() - t)
        t = time.perf_counter()
        torch.save({**state, "step": i}, folder / "plain.pt")
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        with open(folder / "synced.pt", "wb") as f:  # durable but not atomic
            torch.save({**state, "step": i}, f)
            f.flush()
            os.fsync(f.fileno())
        synced.append(time.perf_counter() - t)
    return {"atomic_ms": 1e3 * statistics.median(atomic),
            "plain_ms": 1e3 * statistics.median(plain),
            "fsync_ms": 1e3 * statistics.median(synced),
            "bytes": (folder / "atomic.pt").stat().st_size}


def time_loaders(folder: Path, repeats: int) -> dict:
    checked, plain = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        load_checkpoint(folder / "atomic.pt")
        checked.append(time.perf_counter() - t)
        t = time.perf_counter()
        torch.load(folder / "plain.pt", weights_only=True)
        plain.append(time.perf_counter() - t)
    return {"checked_ms": 1e3 * statistics.median(checked),
            "plain_ms": 1e3 * statistics.median(plain)}


def time_lock(folder: Path, repeats: int) -> float:
    t = time.perf_counter()
    for _ in range(repeats):
        with RunLock(folder / "run"):
            pass
    return 1e3 * (time.perf_counter() - t) / repeats


def kill_during_saves(folder: Path, kills: int, seed: int) -> dict:
    """Fork savers and SIGKILL them at random moments; count loads that fail."""
    import random

    rng = random.Random(seed)
    path = folder / "killed.pt"
    payload = torch.arange(2**20, dtype=torch.float32)
    save_checkpoint(path, {"step": 0, "payload": payload})
    mid_save, bad = 0, 0
    for _ in range(kills):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    save_checkpoint(path, {"step": 1, "payload": payload})
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.01, 0.1))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        mid_save += any(folder.glob(".killed.pt.*.tmp"))
        try:
            load_checkpoint(path)
        except Exception:  # noqa: BLE001 - counted, not raised: this is the measurement
            bad += 1
    save_checkpoint(path, {"step": 2})
    return {"kills": kills, "mid_save": mid_save, "unloadable": bad,
            "temporaries_left": len(list(folder.glob(".killed.pt.*")))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/reliability.json")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write = time_writers(model_state(args.n_embd), folder, args.repeats)
        load = time_loaders(folder, args.repeats)
        lock_ms = time_lock(folder, args.repeats)
        kills = kill_during_saves(folder, args.kills, args.seed) if hasattr(os, "fork") else None
    rows = [("save (atomic, fsync) vs torch.save", write["atomic_ms"], write["plain_ms"]),
            ("save (atomic) vs torch.save + fsync", write["atomic_ms"], write["fsync_ms"]),
            ("load (finite check) vs torch.load", load["checked_ms"], load["plain_ms"])]
    print(f"checkpoint of {write['bytes'] / 2**20:.2f} MiB, median of {args.repeats}")
    print(f"{'operation':<40} {'qllm ms':>9} {'bare ms':>9} {'ratio':>7}")
    for name, ours, bare in rows:
        print(f"{name:<40} {ours:>9.2f} {bare:>9.2f} {ours / bare:>6.2f}x")
    print(f"{'run lock, take + release':<40} {lock_ms:>9.3f}")
    if kills:
        print(f"SIGKILL inside saves: {kills['mid_save']}/{kills['kills']} landed mid-save, "
              f"{kills['unloadable']} unloadable checkpoints, {kills['temporaries_left']} "
              "temporaries left after the next save")
    data = {"config": vars(args), "seed": args.seed, "write": write, "load": load,
            "lock_ms": lock_ms, "kills": kills, "versions": versions(), "machine": machine(),
            "cost": {"wall_time_s": time.perf_counter() - start}}
    write_json(args.out, data)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
