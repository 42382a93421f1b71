"""Text tasks for pretrained backbones (no backbone needed): stdlib_topics, meaning as text, and
the CSV/TSV/JSONL loader; FinetuneConfig validation."""

from __future__ import annotations

import collections
import csv
import importlib
import inspect
import json

import pytest

from qllm.data import meaning
from qllm.errors import ConfigError, DataError
from qllm.pretrained.config import FinetuneConfig
from qllm.pretrained.tasks import STDLIB_AREAS, load_text_task, split_task, stdlib_topics


@pytest.fixture(scope="module")
def topics():
    return stdlib_topics()


def test_stdlib_topics_is_large_balanced_and_split(topics):
    assert topics.n_classes >= 6
    sizes = topics.sizes()
    assert sum(sizes.values()) >= 1000 and sizes["val"] > 0 and sizes["test"] > 0
    per_class = collections.Counter(y for s in ("train", "val", "test") for y in topics.labels[s])
    assert len(set(per_class.values())) == 1  # balanced
    # stratified: every split holds every class in the same amount
    for s in ("val", "test"):
        assert len(set(collections.Counter(topics.labels[s]).values())) == 1
    texts = [t for s in ("train", "val", "test") for t in topics.texts[s]]
    assert len(set(texts)) == len(texts)  # no example in two splits
    assert stdlib_topics().fingerprint() == topics.fingerprint()  # fixed, seeded
    assert stdlib_topics(split_seed=1).fingerprint() != topics.fingerprint()


def test_stdlib_topics_labels_name_the_module_area(topics):
    # each text is the first paragraph of a docstring of a module in its labelled area
    docs = {}
    for area, modules in STDLIB_AREAS.items():
        for m in modules:
            mod = importlib.import_module(m)
            objs = [mod] + [getattr(mod, a) for a in dir(mod) if not a.startswith("_")]
            for o in objs:
                if not (o is mod or inspect.isclass(o) or inspect.isroutine(o)):
                    continue
                for d in [inspect.getdoc(o)] + ([inspect.getdoc(v) for v in vars(o).values()]
                                                if inspect.isclass(o) else []):
                    if d:
                        key = " ".join(d.strip().split("\n\n")[0].split())
                        docs.setdefault(key, set()).add(area)
    classes = topics.classes
    sample = list(zip(topics.texts["test"], topics.labels["test"]))[:100]
    found = [classes[y] in docs[t] for t, y in sample if t in docs]
    assert len(found) >= 90 and all(found)


def test_meaning_text_matches_the_token_task():
    task = load_text_task("meaning", n=100)
    d = meaning(n=100)
    words = {" ".join(d.vocab[i] for i in row if i): int(y)
             for row, y in zip([*d.x_train.tolist(), *d.x_test.tolist()],
                               [*d.y_train.tolist(), *d.y_test.tolist()])}
    for s in ("train", "val", "test"):
        for t, y in zip(task.texts[s], task.labels[s]):
            assert words[t] == y
    assert sum(task.sizes().values()) == 100


def _rows(n=30):
    return [{"text": f"sentence number {i} about {'cats' if i % 3 else 'dogs'}",
             "label": "cat" if i % 3 else "dog"} for i in range(n)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_text_classification_reads_local_files(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    rows = _rows()
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, ["text", "label"], delimiter="\t" if suffix == ".tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    task = load_text_task("text_classification", path=str(path))
    assert task.classes == ["cat", "dog"]
    truth = {r["text"]: r["label"] for r in rows}
    got = {t: task.classes[y] for s in ("train", "val", "test")
           for t, y in zip(task.texts[s], task.labels[s])}
    assert got == truth


def test_text_classification_errors(tmp_path):
    with pytest.raises(DataError, match="needs task_options"):
        load_text_task("text_classification")
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match=r"\.csv, \.tsv or \.jsonl"):
        load_text_task("text_classification", path=str(bad))
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"sentence": r["text"], "label": r["label"]})
                           for r in _rows()))
    with pytest.raises(DataError, match="text_column='text'"):
        load_text_task("text_classification", path=str(p))
    assert load_text_task("text_classification", path=str(p), text_column="sentence").n_classes == 2
    with pytest.raises(DataError, match="unknown text task"):
        load_text_task("imdb")


def test_split_is_seeded_and_stratified():
    texts, labels = [f"t{i}" for i in range(100)], [i % 4 for i in range(100)]
    a = split_task("x", texts, labels, list("abcd"), seed=3)
    b = split_task("x", texts, labels, list("abcd"), seed=3)
    assert a.texts == b.texts and a.sizes() == {"train": 68, "val": 16, "test": 16}


def test_finetune_config_validates_and_overrides():
    cfg = FinetuneConfig().override({"train.lr": 0.01, "n_qubits": 6, "model.rank": 8})
    assert (cfg.lr, cfg.n_qubits, cfg.rank) == (0.01, 6, 8)
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="adapter='qlora' is not one of"):
        FinetuneConfig(adapter="qlora")
    with pytest.raises(ConfigError, match="names no field"):
        FinetuneConfig().override({"n_qbits": 3})
    with pytest.raises(ConfigError, match="max_length"):
        FinetuneConfig(max_length=0)
