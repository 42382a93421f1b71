"""Tasks: shapes, label ranges, fixed seeded data, disjoint splits, text files; bad options."""

from __future__ import annotations

import pytest
import torch

from qllm.data import TASKS, char_lm, load_task
from qllm.errors import DataError

SMALL = {
    "digits": {},
    "meaning": {"n": 60},
    "parity": {"n": 50, "seq_len": 6},
    "copy": {"n": 50, "length": 3},
    "sort": {"n": 50, "length": 3},
    "stdlib_text": {"seq_len": 8, "max_chars": 3000},
    "digits_qa": {"questions": 1},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20)
    return path


def _load(name, corpus):
    return load_task(name, **({"path": corpus, "seq_len": 8} if name == "text" else SMALL[name]))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_loads_with_consistent_shapes(name, corpus):
    t = _load(name, corpus)
    assert t.name == name and t.kind in ("classify", "lm")
    assert len(t.x_train) == len(t.y_train) > 0 and len(t.x_test) == len(t.y_test) > 0
    assert t.x_train.shape[1] == t.seq_len
    if t.input_dim is not None:
        assert t.x_train.shape[2] == t.input_dim and t.x_train.is_floating_point()
        assert torch.isfinite(t.x_train).all()
    else:
        assert t.x_train.dtype == torch.int64
        assert 0 <= int(t.x_train.min()) and int(t.x_train.max()) < t.vocab_size
        assert len(t.vocab) == t.vocab_size
    if t.kind == "classify":
        assert t.y_train.shape == (len(t.x_train),)
        assert set(t.y_train.unique().tolist()) <= set(range(t.n_classes))
    else:
        assert t.y_train.shape == t.x_train.shape
        kept = t.y_train[t.y_train != -100]
        assert kept.numel() and int(kept.max()) < t.vocab_size
    fields = t.model_fields()
    assert fields["block_size"] == t.seq_len and fields["task"] == t.kind


@pytest.mark.parametrize("name", ["parity", "copy", "meaning"])
def test_tasks_are_fixed_and_split_seeds_pick_the_split(name, corpus):
    a, b = _load(name, corpus), _load(name, corpus)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_task(name, **SMALL[name], split_seed=1)
    assert not torch.equal(a.x_train, c.x_train)
    assert len(a.x_train) + len(a.x_test) == len(c.x_train) + len(c.x_test)


def test_copy_and_sort_targets_are_the_answer():
    for name in ("copy", "sort"):
        t = load_task(name, n=20, length=3, n_symbols=5)
        x, y = t.x_train[0], t.y_train[0]
        src = x[:3]
        answer = y[3:]
        expected = src if name == "copy" else src.sort().values
        assert torch.equal(answer, expected) and int(x[3]) == 5  # the separator
        assert (y[:3] == -100).all()


def test_parity_labels_are_the_parity():
    t = load_task("parity", n=40, seq_len=5)
    assert torch.equal(t.y_train, t.x_train.sum(1) % 2)


def test_char_lm_windows_shift_by_one():
    t = char_lm("abcdefghij" * 10, seq_len=4)
    assert torch.equal(t.x_train[0][1:], t.y_train[0][:-1])
    assert "".join(t.vocab) == "abcdefghij"


def test_bad_text_files(tmp_path):
    with pytest.raises(DataError, match="path"):
        load_task("text")
    with pytest.raises(DataError, match="nope.txt"):
        load_task("text", path=tmp_path / "nope.txt")
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(DataError, match="characters"):
        load_task("text", path=tmp_path / "short.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x81" * 100)
    with pytest.raises(DataError, match="bin.txt"):
        load_task("text", path=tmp_path / "bin.txt")


@pytest.mark.parametrize("name,options,needle", [
    ("nope", {}, "nope"), ("parity", {"n": 3}, "n="), ("parity", {"n": 1.5}, "n="),
    ("copy", {"n_symbols": 1}, "n_symbols"), ("digits", {"patch": 5}, "patch"),
    ("parity", {"colour": "red"}, "colour"), ("stdlib_text", {"seq_len": 0}, "seq_len"),
])
def test_bad_task_options(name, options, needle):
    with pytest.raises(DataError, match=needle):
        load_task(name, **options)
