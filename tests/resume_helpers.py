"""What the exact-resume tests share: a crash right after a chosen checkpoint, the uninterrupted
run beside the crashed-and-resumed one, and a comparison of saved states to the bit."""

from __future__ import annotations

import pytest
import torch


class Crash(Exception):
    """Stands for a process killed right after a checkpoint was written."""


def crash_after_step(monkeypatch, module, step: int) -> None:
    """Make ``module.save_checkpoint`` raise ``Crash`` right after writing step ``step``'s."""
    save = module.save_checkpoint

    def crash_after(path, state):
        save(path, state)
        if state["step"] == step:
            raise Crash

    monkeypatch.setattr(module, "save_checkpoint", crash_after)


def whole_and_resumed(monkeypatch, module, step: int, run):
    """``(whole, resumed)``: ``run("whole", False)`` uninterrupted, and ``run("split", ...)``
    crashed after the checkpoint of ``step`` (in ``module``, e.g. ``qllm.train``) and resumed.

    Args:
        run: ``run(folder_name, resume) -> results`` (train or finetune into that folder).
    """
    whole = run("whole", False)
    with monkeypatch.context() as patched:
        crash_after_step(patched, module, step)
        with pytest.raises(Crash):
            run("split", False)
    return whole, run("split", True)


def train_and_resume(monkeypatch, tmp_path, model_cfg, train_cfg, crash_step: int,
                     before_each=None):
    """``(whole, resumed)`` ``qllm.train.train`` results: uninterrupted in ``tmp_path/whole``,
    and crashed after the checkpoint of ``crash_step`` and resumed in ``tmp_path/split``; asserts
    equal losses and model states (weights and generator states) to the bit.

    Args:
        before_each: called before every run (e.g. to clear a cache the run fills).
    """
    import qllm.train as T

    def run(folder, resume):
        if before_each is not None:
            before_each()
        return T.train(model_cfg, train_cfg, out_dir=tmp_path / folder, resume=resume)

    whole, resumed = whole_and_resumed(monkeypatch, T, crash_step, run)
    assert resumed["losses"] == whole["losses"]
    assert_same_state(whole["model"].state_dict(), resumed["model"].state_dict())
    return whole, resumed


def assert_same_state(a, b, where: str = "state") -> None:
    """``a`` and ``b`` (state dicts: tensors, generator states, plain values) equal to the bit."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where
