"""Compression sweep on the quick benchmark's digits hybrid (quantum FFN, 4 qubits, seed 0).

Trains the hybrid with the quick preset's settings (or reuses it), then prunes and quantizes its
circuits over a grid of tolerances and bit widths (post-training; quantization-aware fine-tuning
at 1-3 bits), and prints one table: test accuracy, circuit weights, gates and depth transpiled
for ibm_torino, circuits per parameter-shift training step, projected QPU seconds per epoch
(ibm_heron), and the stated bound on each expectation value's change. Writes
``OUT/compression/sweep.json`` (config, seed, versions, wall time, every point), ``sweep.md`` and
``figures/compression.{pdf,png}``.

    python benchmarks/compression_sweep.py                 # ~3 min on 2 cores
    python benchmarks/compression_sweep.py --smoke         # a few steps and points (tests)
    qllm bench --preset compression                        # the same as the first line
"""

from __future__ import annotations

import argparse

from qllm.experiments.compression import run

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    run(args.out, progress=True, smoke=args.smoke)
