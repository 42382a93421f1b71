"""Reliability, part 1: concurrent runs in one folder, `qllm cost` on bad files, full disks, kills
mid-write (part 2: tests/test_reliability_cli.py). Each test failed before its fix."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from qllm.checkpoint import load_checkpoint, save_checkpoint
from qllm.errors import RunLockedError, StorageError
from qllm.results import atomic_write, write_json
from qllm.runlock import LOCK_NAME, RunLock
from qllm.train import train
from tests.reliability_helpers import (
    CFG,
    ENV,
    TINY,
    assert_one_line_error,
    cli,
    dead_pid,
    finished_run,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return finished_run(tmp_path_factory)


# -- 1. two runs in one folder -----------------------------------------------------------------
def test_a_second_run_in_a_busy_folder_is_refused_and_the_first_finishes(tmp_path):
    out = tmp_path / "R"
    code = ("import sys; from qllm.config import ModelConfig, TrainConfig; from qllm.train import "
            "train; train(ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1), "
            "TrainConfig(task='digits', epochs=3, checkpoint_every=1, progress=False), "
            f"out_dir={str(out)!r}); print('first done')")
    first = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.poll() is None, first.communicate()
    with pytest.raises(RunLockedError) as info:
        train(TINY, CFG, out_dir=out)
    assert str(out) in str(info.value) and f"process {first.pid}" in str(info.value)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0 and "first done" in stdout, stderr
    assert not (out / LOCK_NAME).exists()


def test_a_stale_lock_is_taken_over(tmp_path):
    out = tmp_path / "R"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": os.uname().nodename}))
    res = train(TINY, CFG, out_dir=out)
    assert res["steps"] == 2 and not (out / LOCK_NAME).exists()


def test_a_lock_of_a_live_process_without_flock_is_respected(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": holder.pid,
                                                      "host": os.uname().nodename}))
        with pytest.raises(RunLockedError, match=str(holder.pid)):
            RunLock(tmp_path).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # its process gone, the lock is taken over
        with RunLock(tmp_path):  # and re-entered by the same process
            pass
    assert not (tmp_path / LOCK_NAME).exists()


# -- 2. cost on bad files ---------------------------------------------------------------------
@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"), ("", "empty"), (b"\x80\x81\xff\x00", "binary"),
    ("[1, 2]", "JSON list"), ('{"model": 5}', "JSON object"), ('{"input_dim": 4, "n_embd": "x"}', "n_embd"),
])
def test_cost_refuses_bad_json_in_one_line(tmp_path, capsys, content, needle):
    path = tmp_path / "model.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_one_line_error(*cli(["cost", path], capsys)[::2], needle)


def test_cost_of_a_folder(tmp_path, run_dir, capsys):
    assert_one_line_error(*cli(["cost", tmp_path], capsys)[::2], "folder")
    code, out, err = cli(["cost", run_dir, "--target", "ibm_manila", "--profile", "ibm_heron"],
                         capsys)
    assert code == 0 and "## Resource cost" in out and "seq_len=16" in out, err


# -- 3. a full disk ---------------------------------------------------------------------------
def _disk_full_after(monkeypatch, n_bytes: int) -> None:
    """Writes through qllm.results fail with ENOSPC once ``n_bytes`` went through."""
    import qllm.results as results

    written = [0]
    real = results._RecordingFile.write

    def write(self, data):
        written[0] += len(data)
        if written[0] > n_bytes:
            self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise self.error
        return real(self, data)

    monkeypatch.setattr(results._RecordingFile, "write", write)


@pytest.mark.parametrize("kind", ["checkpoint", "json"])
def test_a_full_disk_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch, kind):
    path = tmp_path / ("checkpoint.pt" if kind == "checkpoint" else "results.json")
    old = {"step": 1, "w": torch.arange(4.0)} if kind == "checkpoint" else {"step": 1}
    save_checkpoint(path, old) if kind == "checkpoint" else write_json(path, old)
    before = path.read_bytes()
    _disk_full_after(monkeypatch, 100)
    big = {"step": 2, "w": torch.rand(10_000)} if kind == "checkpoint" else {"x": [0.5] * 10_000}
    with pytest.raises(StorageError) as info:
        save_checkpoint(path, big) if kind == "checkpoint" else write_json(path, big)
    message = str(info.value)
    assert "disk is full" in message and str(path) in message and "untouched" in message
    assert "unexpected pos" not in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_full_disk_during_train_ends_in_one_line_naming_the_checkpoint(run_dir, tmp_path,
                                                                         monkeypatch, capsys):
    out = tmp_path / "R"
    train(TINY, CFG, out_dir=out)
    good = load_checkpoint(out / "checkpoint.pt")
    _disk_full_after(monkeypatch, 0)
    code, _, err = cli(["train", "--out", out, "--resume", "--set", "train.max_steps=2"], capsys)
    # a finished run resumes straight to writing results.json, which fails
    assert_one_line_error(code, err, "disk is full", "results.json",
                          "last good checkpoint", "--resume")
    assert torch.equal(load_checkpoint(out / "checkpoint.pt")["model"]["head.weight"],
                       good["model"]["head.weight"])
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "results.json"]


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB tmpfs (root only; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                                            str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_during_train(small_disk, capsys):
    out = small_disk / "R"
    train(TINY, CFG, out_dir=out)
    good = (out / "checkpoint.pt").read_bytes()
    (out / "results.json").unlink()
    with open(small_disk / "filler", "wb", buffering=0) as f:  # fill the disk to the last byte
        with pytest.raises(OSError):
            while True:
                f.write(b"\0" * 4096)
    code, _, err = cli(["train", "--out", out, "--resume", "--set", "train.max_steps=2"], capsys)
    assert_one_line_error(code, err, "disk is full", "results.json", "last good checkpoint")
    assert (out / "checkpoint.pt").read_bytes() == good
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]


# -- 4. temporaries of killed writes -----------------------------------------------------------
def test_a_kill_mid_write_leaves_a_temporary_that_the_next_run_sweeps(tmp_path):
    out = tmp_path / "R"
    out.mkdir()
    code = ("import os, signal, qllm.results as r\n"
            "real = r._RecordingFile.write\n"
            "def write(self, data):\n"
            "    real(self, data[:10]); self.f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
            "r._RecordingFile.write = write\n"
            f"r.write_json({str(out / 'results.json')!r}, {{'a': 1}})\n")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = list(out.glob(".results.json.*"))
    assert len(left) == 1  # the killed write's temporary, named with its dead pid
    legacy = out / ".results.json.abc123"  # an older version's naming
    legacy.write_text("{")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_tmp = out / f".checkpoint.pt.{live.pid}.xyz.tmp"  # a live writer's: kept
        live_tmp.write_bytes(b"partial")
        train(TINY, CFG, out_dir=out)
        assert not left[0].exists() and not legacy.exists() and live_tmp.exists()
    finally:
        live.kill()
        live.wait()
    atomic_write(out / "checkpoint.pt", b"x")  # its writer gone, the next write sweeps it
    assert not live_tmp.exists()


def test_ctrl_c_mid_write_finishes_the_file_then_interrupts(tmp_path):
    # a real SIGINT lands inside torch.save; the zip writer must not be torn (its own error
    # would replace the KeyboardInterrupt) and the new checkpoint must be whole
    payload = {"w": torch.arange(10_000.0)}

    def write(f):
        os.kill(os.getpid(), signal.SIGINT)
        torch.save(payload, f)

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "c.pt", write)
    assert torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["w"], payload["w"])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
