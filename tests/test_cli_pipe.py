"""A reader that stops early (`qllm list | head -1`) ends a command quietly: no traceback, status
141 (128 + SIGPIPE) when the pipe closed before the output was written (0 for what argparse
prints, --help and --version: argparse drops its own write errors), the lines it did read
intact. Real subprocesses and real pipes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qllm.cli import SIGPIPE_STATUS

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
COMMANDS = {"list": (["list"], (SIGPIPE_STATUS,)), "bench --help": (["bench", "--help"], (0,)),
            "--version": (["--version"], (0,))}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_pipe_closed_before_any_output_ends_quietly(name):
    argv, statuses = COMMANDS[name]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes a byte
    try:
        done = subprocess.run([sys.executable, "-m", "qllm.cli", *argv], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=ENV, timeout=120)
    finally:
        os.close(write)
    assert done.returncode in statuses and SIGPIPE_STATUS == 141, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("argv,lines", [(["list"], 1), (["bench", "--help"], 2)], ids=str)
def test_piping_into_head_prints_its_lines_and_no_traceback(argv, lines):
    cli = subprocess.Popen([sys.executable, "-m", "qllm.cli", *argv], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=ENV)
    head = subprocess.run(["head", f"-{lines}"], stdin=cli.stdout, capture_output=True,
                          text=True, timeout=120)
    cli.stdout.close()  # only head holds the read end now: its exit closes the pipe
    err = cli.stderr.read().decode()
    cli.stderr.close()
    status = cli.wait(timeout=120)
    full = subprocess.run([sys.executable, "-m", "qllm.cli", *argv], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert head.stdout.splitlines() == full.stdout.splitlines()[:lines]
    assert err == "" and status in (0, SIGPIPE_STATUS), err
