"""Accuracy and cost of hybrid models against classical baselines (the same as ``qllm bench``).

For each task: the width-matched and parameter-matched classical baselines and the hybrid variants
of the preset, over several seeds; then the noise study on digits; then one JSON per run, an
aggregated CSV and markdown table, and PNG plots under ``OUT/<preset>/``. Re-running skips runs
whose JSON exists.

    python benchmarks/accuracy.py --preset quick                   # ~10 min on 2 cores
    python benchmarks/accuracy.py --preset full --workers 16       # see benchmarks/README.md
    python benchmarks/accuracy.py --preset full --executor ray --ray-address auto
    python benchmarks/accuracy.py --preset quick --text my_corpus.txt
    python benchmarks/accuracy.py --preset full --dry-run          # list the runs
"""

from __future__ import annotations

import sys

from qllm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
