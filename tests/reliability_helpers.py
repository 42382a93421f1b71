"""What the two reliability test files share: a tiny model and run, the CLI called in-process,
the one-line error check, and the pid of a process that has exited."""

from __future__ import annotations

import os
import subprocess
import sys

from qllm.cli import main
from qllm.config import ModelConfig, TrainConfig
from qllm.train import train

TINY = ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1, mlp_ratio=1)
CFG = TrainConfig(task="digits", max_steps=2, progress=False)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def finished_run(tmp_path_factory):
    """A finished run R, like `qllm train --task digits --set train.max_steps=2 --out R`."""
    out = tmp_path_factory.mktemp("R")
    train(TINY, CFG, out_dir=out)
    return out


def cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("qllm"), err
    for needle in needles:
        assert needle in err, err


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid
