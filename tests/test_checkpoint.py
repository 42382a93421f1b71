"""Checkpoints: atomic under SIGKILL, safe against crafted pickles, clear errors naming the file,
RNG states that round-trip through weights_only loading."""

from __future__ import annotations

import os
import pickle
import random
import signal
import time

import numpy as np
import pytest
import torch

from qllm.checkpoint import FORMAT, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from qllm.errors import CheckpointError


# -- atomic writes ---------------------------------------------------------------------------
def _save_forever(path, payload: torch.Tensor, step: int) -> None:
    """Child process: save checkpoints step + 1, step + 2, ... as fast as possible until killed.
    (No tensor arithmetic here: OpenMP thread pools do not survive a fork.)"""
    while True:
        step += 1
        save_checkpoint(path, {"step": step, "stamp": torch.tensor([step]), "payload": payload})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_during_saves_never_corrupts_the_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 0, "payload": torch.zeros(1)})
    payload = torch.arange(2**21, dtype=torch.float32)  # 8 MiB: the child is mostly mid-save
    rng = random.Random(2024)
    last_step, mid_save_kills = 0, 0
    for _ in range(20):
        pid = os.fork()
        if pid == 0:  # child
            try:
                _save_forever(path, payload, last_step)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        mid_save_kills += any(tmp_path.glob(".ckpt.pt.*.tmp"))  # killed between open and rename
        state = load_checkpoint(path)  # the previous checkpoint always loads
        step = state["step"]
        assert step >= last_step
        if step:
            assert torch.equal(state["payload"], payload)
            assert int(state["stamp"]) == step, "a checkpoint mixes two saves"
        last_step = step
    assert last_step > 20  # children did save
    assert mid_save_kills >= 5, "the kills should land inside saves (test would prove nothing)"
    save_checkpoint(path, {"step": -1})  # the next save removes the killed saves' temporaries
    assert not any(tmp_path.glob(".ckpt.pt.*.tmp"))
    assert load_checkpoint(path)["step"] == -1


def test_save_leaves_no_temporary_and_replaces(tmp_path):
    path = tmp_path / "sub" / "c.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2, "w": torch.arange(3)})
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]
    state = load_checkpoint(path)
    assert state["format"] == FORMAT and state["step"] == 2
    assert torch.equal(state["w"], torch.arange(3))


# -- unsafe and broken files -----------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_crafted_pickle_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pt"
    with open(raw, "wb") as f:
        pickle.dump({"format": FORMAT, "model": _Payload(str(marker))}, f)
    zipped = tmp_path / "zipped.pt"
    torch.save({"format": FORMAT, "model": _Payload(str(marker))}, zipped)
    for path in (raw, zipped):
        with pytest.raises(CheckpointError, match=path.name):
            load_checkpoint(path)
        assert not marker.exists()
    # the payload is real: plain unpickling runs it
    proof = tmp_path / "proof"
    with open(raw, "rb") as f:
        data = f.read().replace(str(marker).encode(), str(proof).encode().ljust(
            len(str(marker)), b"_")[:len(str(marker))])
    pickle.loads(data)
    assert any(p.name.startswith("proof") for p in tmp_path.iterdir())


def test_missing_truncated_and_foreign_files_name_the_file(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", {"step": 1, "w": torch.rand(1000)})
    blob = good.read_bytes()
    cases = {
        "missing.pt": None,
        "truncated.pt": blob[: len(blob) // 2],
        "empty.pt": b"",
        "text.pt": b"not a checkpoint at all\n",
    }
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)
    torch.save({"step": 1}, tmp_path / "foreign.pt")  # a torch file, but not ours
    with pytest.raises(CheckpointError, match="foreign.pt.*not a qllm checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is not a file"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="lacks.*optimizer"):
        load_checkpoint(good, require=("step", "optimizer"))
    with pytest.raises(CheckpointError, match="path"):
        load_checkpoint(None)


def test_save_refuses_what_weights_only_could_not_load(tmp_path):
    path = tmp_path / "c.pt"
    with pytest.raises(CheckpointError, match=r"state\['rng'\]\['np'\].*numpy"):
        save_checkpoint(path, {"rng": {"np": np.zeros(3)}})
    with pytest.raises(CheckpointError, match="must be a dict"):
        save_checkpoint(path, [1, 2])
    with pytest.raises(CheckpointError, match="folder"):
        save_checkpoint(tmp_path, {"step": 1})
    assert not path.exists()


# -- RNG state ---------------------------------------------------------------------------------
def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    random.gauss(0, 1)
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = (torch.rand(4), np.random.normal(size=3), random.random(), random.gauss(0, 1))
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    set_rng_state(load_checkpoint(path)["rng"])
    got = (torch.rand(4), np.random.normal(size=3), random.random(), random.gauss(0, 1))
    assert torch.equal(expected[0], got[0])
    assert np.array_equal(expected[1], got[1])
    assert expected[2:] == got[2:]

