"""Exact resume: 100 steps uninterrupted == 40 steps + checkpoint + a NEW PROCESS + 60 steps.

Weights, optimizer state and the loss curve must be bit-identical on CPU, with the checkpoint
taken in the middle of an epoch, dropout on, and SPSA gradients (a private generator that must
be saved and restored). Every run is a subprocess so all three see the same torch settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from qllm.checkpoint import load_checkpoint
from qllm.config import ModelConfig, TrainConfig
from qllm.errors import CheckpointError
from qllm.train import train
from tests.resume_helpers import assert_same_state

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = dict(input_dim=4, n_embd=8, n_head=2, n_layer=1, ffn="quantum", dropout=0.1,
             quantum=dict(n_qubits=3, n_layers=1, gradient="spsa"))
# 128 training sequences / batch 5 = 26 steps per epoch: the step-40 checkpoint is mid-epoch.
TRAIN = dict(task="parity", task_options={"n": 160, "seq_len": 6}, batch_size=5, epochs=10,
             max_steps=100, checkpoint_every=40, progress=False, seed=11)

RUN = textwrap.dedent("""
    import sys
    import qllm.train as T
    from qllm.config import ModelConfig, TrainConfig
    stop_at = int(sys.argv[2])
    save = T.save_checkpoint

    def crash_after(path, state):  # simulate a crash right after the checkpoint of step stop_at
        save(path, state)
        if state["step"] == stop_at:
            sys.exit(3)

    T.save_checkpoint = crash_after
    T.train(ModelConfig.from_dict({model}), TrainConfig.from_dict({train}), out_dir=sys.argv[1])
""")


def _start(args, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # every run alike, and fast on a busy machine
    return subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _run(args, cwd: Path) -> subprocess.CompletedProcess:
    return _finish(_start(args, cwd))


def _finish(p: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = p.communicate(timeout=180)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_resume_in_new_process_is_bit_identical(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN.format(model=repr(MODEL), train=repr(TRAIN)))
    full, half = tmp_path / "full", tmp_path / "half"

    # the uninterrupted run and the first half run side by side (2 cores)
    p_full = _start([str(script), str(full), "-1"], tmp_path)
    r = _run([str(script), str(half), "40"], tmp_path)
    assert r.returncode == 3, r.stderr[-2000:]
    r = _finish(p_full)
    assert r.returncode == 0, r.stderr[-2000:]
    mid = load_checkpoint(half / "checkpoint.pt")
    assert mid["step"] == 40 and 40 % 26 != 0  # stopped in the middle of epoch 2
    assert not (half / "results.json").exists()

    r = _run(["-m", "qllm.cli", "train", "--out", str(half), "--resume"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]

    a, b = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(half / "checkpoint.pt")
    assert a["step"] == b["step"] == 100
    assert_same_state(a["model"], b["model"])  # weights, and the SPSA generators' states
    for pid, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, b["optimizer"]["state"][pid][k]), (pid, k)
    assert a["scheduler"] == b["scheduler"]
    assert a["losses"] == b["losses"] and len(a["losses"]) == 100
    assert b["losses"][:40] == mid["losses"]
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, half))
    assert ra["losses"] == rb["losses"]
    assert ra["final"] == rb["final"]
    assert [h["step"] for h in ra["history"]] == [h["step"] for h in rb["history"]]
    assert "blocks.0.ffn.vqc._extra_state" in a["model"]  # the SPSA directions' generator


def _small(**train_over):
    model = ModelConfig.from_dict({**MODEL, "quantum": dict(n_qubits=2, n_layers=1)})
    return model, TrainConfig.from_dict({**TRAIN, "max_steps": 12, "checkpoint_every": 5,
                                         **train_over})


def test_resume_needs_a_checkpoint(tmp_path):
    model, cfg = _small()
    with pytest.raises(CheckpointError, match="checkpoint"):
        train(model, cfg, out_dir=tmp_path / "none", resume=True)


def test_resume_refuses_a_different_config(tmp_path):
    model, cfg = _small()
    train(model, cfg, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="lr"):
        train(model, cfg.override({"lr": 0.5}), out_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="n_embd"):
        train(model.override({"n_embd": 4}), cfg, out_dir=tmp_path, resume=True)


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    model, cfg = _small()
    first = train(model, cfg, out_dir=tmp_path)
    again = train(model, cfg, out_dir=tmp_path, resume=True)
    assert again["losses"] == first["losses"] and again["steps"] == 12
    assert_same_state(first["model"].state_dict(), again["model"].state_dict())
