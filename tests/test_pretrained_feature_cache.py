"""The head-only adapters' disk cache of pooled backbone features: a second run (a new process:
the in-memory cache cleared) reuses it without a backbone forward, a corrupt file is ignored with
a one-line warning and rebuilt, and another backbone hash, length or data set never hits."""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import pytest
import torch

from qllm.pretrained import FinetuneConfig, finetune, load_backbone
from qllm.pretrained import feature_cache as fc
from qllm.pretrained.inputs import clear_memory_cache, pooled_features, split_inputs
from qllm.pretrained.tasks import split_task

pytest.importorskip("peft")
pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """A pickled object ``torch.load(weights_only=True)`` must refuse to build."""


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("minilm")


@pytest.fixture(scope="module")
def task():
    texts = [f"the {w} {v} {o}" for w in ("cook", "chef", "engineer") for v in ("bakes", "runs")
             for o in ("bread", "code", "sauce", "program", "meal", "dinner")]
    labels = [int(t.split()[3] in ("code", "program")) for t in texts]
    return split_task("tiny", texts * 2, labels * 2, ["food", "it"], seed=0)


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(fc.CACHE_ENV, raising=False)
    clear_memory_cache()
    yield
    clear_memory_cache()


def _forwards(backbone, run):
    """(backbone forward calls, result) of ``run()``, counted by a hook on the model."""
    calls = []
    hook = backbone.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = run()
    finally:
        hook.remove()
    return len(calls), out


def _features(backbone, task, folder, max_length=8):
    data = split_inputs(backbone, task, max_length, head_only=True, cache_dir=folder)
    return {s: x[0][0] for s, x in data.items()}


def test_second_run_reuses_the_disk_cache(minilm, task, tmp_path):
    n, first = _forwards(minilm, lambda: _features(minilm, task, tmp_path))
    assert n == 3 and len(list(tmp_path.glob("*.pt"))) == 3  # one batch per split
    ids, mask = minilm.tokenize(task.texts["test"], 8)
    torch.testing.assert_close(first["test"], pooled_features(minilm, ids, mask))
    clear_memory_cache()  # as in a new process
    n, again = _forwards(minilm, lambda: _features(minilm, task, tmp_path))
    assert n == 0 and all(torch.equal(first[s], again[s]) for s in first)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary behind


def test_corrupt_files_are_ignored_with_a_warning_and_rebuilt(minilm, task, tmp_path):
    first = _features(minilm, task, tmp_path)
    files = sorted(tmp_path.glob("*.pt"))
    files[0].write_bytes(b"not a torch file")
    files[1].write_bytes(files[2].read_bytes())  # a valid file under another key's name
    clear_memory_cache()
    with pytest.warns(UserWarning, match="ignored and rebuilt") as caught:
        n, again = _forwards(minilm, lambda: _features(minilm, task, tmp_path))
    assert n == 2 and len(caught) == 2
    assert all("\n" not in str(w.message) for w in caught)  # one line each
    assert all(torch.equal(first[s], again[s]) for s in first)
    clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt files load cleanly
        n, _ = _forwards(minilm, lambda: _features(minilm, task, tmp_path))
    assert n == 0


def test_a_pickle_that_weights_only_refuses_is_rebuilt(minilm, task, tmp_path):
    _features(minilm, task, tmp_path)
    path = sorted(tmp_path.glob("*.pt"))[0]
    torch.save({"format": fc.FORMAT, "payload": Payload()}, path)
    clear_memory_cache()
    with pytest.warns(UserWarning, match="unreadable"):
        n, _ = _forwards(minilm, lambda: _features(minilm, task, tmp_path))
    assert n == 1


def test_another_backbone_length_or_data_does_not_hit(minilm, task, tmp_path):
    _features(minilm, task, tmp_path)
    other = dataclasses.replace(minilm, sha256="0" * 64)  # same weights, another identity
    clear_memory_cache()
    n, _ = _forwards(minilm, lambda: _features(other, task, tmp_path))
    assert n == 3
    n, _ = _forwards(minilm, lambda: _features(minilm, task, tmp_path, max_length=6))
    assert n == 3
    shuffled = split_task("tiny", task.texts["train"] * 2, task.labels["train"] * 2,
                          task.classes, seed=1)
    n, _ = _forwards(minilm, lambda: _features(minilm, shuffled, tmp_path))
    assert n >= 3 and len(list(tmp_path.glob("*.pt"))) == 12  # 3 misses per change


def test_finetune_reuses_the_cache_across_runs(minilm, task, tmp_path, monkeypatch):
    finetune_module = importlib.import_module("qllm.pretrained.finetune")
    monkeypatch.setattr(finetune_module, "load_backbone", lambda name: minilm)
    cfg = FinetuneConfig(adapter="linear_head", max_length=8, epochs=2, progress=False)

    def run():
        return finetune(cfg, task=task, cost_options=False, feature_cache_dir=tmp_path)

    n_first, first = _forwards(minilm, run)
    clear_memory_cache()
    n_again, again = _forwards(minilm, run)
    assert n_first == 3 and n_again == 0
    assert first["final"] == again["final"] and first["losses"] == again["losses"]


def test_cache_folder_resolution(tmp_path, monkeypatch):
    assert fc.cache_folder(tmp_path) == tmp_path
    monkeypatch.setenv(fc.CACHE_ENV, str(tmp_path / "env"))
    assert fc.cache_folder() == tmp_path / "env"
    monkeypatch.setenv(fc.CACHE_ENV, "off")
    assert fc.cache_folder() is None
    monkeypatch.delenv(fc.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fc.cache_folder() == tmp_path / "xdg" / "qllm" / "features"
