"""Text-classification tasks for pretrained backbones: raw strings and labels, tokenised later
by the backbone's own tokenizer.

- ``stdlib_topics``: real English text every Python install ships: the first paragraph of the
  docstrings of standard-library modules, classes and functions, labelled by the library area the
  module belongs to (7 balanced classes, 160 examples each, 1,120 in all), with a fixed seeded
  train/validation/test split. Docstrings differ a little between Python versions, so results
  record ``TextTask.fingerprint``.
- ``meaning``: qllm's generated cooking-vs-computing sentences (``qllm.data.meaning``) as text.
- ``text_classification``: a local CSV, TSV or JSONL file with a text and a label column.

``load_text_task(name, **options)`` returns a ``TextTask``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qllm.errors import DataError

# Library areas and the modules whose docstrings speak for each (Python docs' chapter layout).
STDLIB_AREAS = {
    "text": ["string", "re", "textwrap", "difflib", "unicodedata", "stringprep", "codecs", "html",
             "html.parser", "locale", "gettext", "shlex"],
    "numbers": ["math", "cmath", "statistics", "decimal", "fractions", "random", "numbers",
                "operator", "array", "bisect", "heapq"],
    "files": ["os", "os.path", "pathlib", "shutil", "tempfile", "glob", "fnmatch", "stat",
              "filecmp", "io", "fileinput", "linecache"],
    "concurrency": ["threading", "multiprocessing", "concurrent.futures", "asyncio", "queue",
                    "subprocess", "sched", "selectors", "signal", "contextvars"],
    "internet": ["socket", "ssl", "http.client", "http.server", "http.cookies", "urllib.request",
                 "urllib.parse", "email", "email.message", "smtplib", "ftplib", "imaplib",
                 "poplib", "mailbox", "ipaddress", "xmlrpc.client", "socketserver"],
    "formats": ["json", "csv", "pickle", "configparser", "xml.etree.ElementTree",
                "xml.dom.minidom", "zipfile", "tarfile", "gzip", "bz2", "lzma", "zlib", "sqlite3",
                "shelve", "base64", "binascii", "plistlib", "struct", "hashlib", "hmac"],
    "devtools": ["unittest", "unittest.mock", "doctest", "pdb", "inspect", "traceback", "logging",
                 "warnings", "timeit", "cProfile", "pstats", "dis", "ast", "tokenize", "trace",
                 "tracemalloc", "argparse", "typing", "dataclasses"],
}
PER_CLASS = 160
MIN_CHARS = 40
SPLITS = ("train", "val", "test")


@dataclass
class TextTask:
    """Strings and integer labels per split (``texts["train"]``, ``labels["val"]``, ...)."""

    name: str
    texts: dict[str, list[str]]
    labels: dict[str, list[int]]
    classes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """sha256 of every split's texts and labels: the key of cached features."""
        h = hashlib.sha256(self.name.encode())
        for s in SPLITS:
            for t, y in zip(self.texts[s], self.labels[s]):
                h.update(f"{s}\0{y}\0{t}\0".encode())
        return h.hexdigest()

    def sizes(self) -> dict[str, int]:
        return {s: len(self.labels[s]) for s in SPLITS}


def split_task(name: str, texts: list[str], labels: list[int], classes: list[str],
               seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.15) -> TextTask:
    """A seeded, stratified train/val/test split (each class split in the same proportions)."""
    rng = np.random.default_rng(seed)
    parts = {s: [] for s in SPLITS}
    y = np.asarray(labels)
    for c in range(len(classes)):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val, n_test = int(round(len(idx) * val_frac)), int(round(len(idx) * test_frac))
        parts["val"] += idx[:n_val].tolist()
        parts["test"] += idx[n_val:n_val + n_test].tolist()
        parts["train"] += idx[n_val + n_test:].tolist()
    order = {s: rng.permutation(np.asarray(v, dtype=np.int64)) for s, v in parts.items()}
    return TextTask(name, {s: [texts[i] for i in o] for s, o in order.items()},
                    {s: [int(y[i]) for i in o] for s, o in order.items()}, list(classes))


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    text = " ".join(doc.strip().split("\n\n")[0].split())
    text = text.encode("ascii", "ignore").decode()
    return text if len(text) >= MIN_CHARS else None


def _module_docs(name: str) -> list[str]:
    """First paragraphs of a module's docstring and its public classes, functions and methods,
    in a fixed order (members sorted by name)."""
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return []
    docs = [inspect.getdoc(mod)]
    for attr in sorted(dir(mod)):
        obj = getattr(mod, attr, None) if not attr.startswith("_") else None
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        docs.append(inspect.getdoc(obj))
        if inspect.isclass(obj):
            docs += [inspect.getdoc(v) for k, v in sorted(vars(obj).items())
                     if not k.startswith("_") and inspect.isroutine(v)]
    return [p for p in map(_first_paragraph, docs) if p]


def stdlib_topics(per_class: int = PER_CLASS, split_seed: int = 0) -> TextTask:
    """Docstrings labelled by standard-library area, ``per_class`` of each (seeded choice)."""
    seen, by_area = set(), {}
    for area, modules in STDLIB_AREAS.items():
        docs = []
        for m in modules:
            for d in _module_docs(m):
                if d not in seen:  # a docstring shared by two areas goes to the first
                    seen.add(d)
                    docs.append(d)
        by_area[area] = docs
    smallest = min(len(v) for v in by_area.values())
    if per_class > smallest:
        raise DataError(f"task 'stdlib_topics': per_class={per_class} is more than this Python's "
                        f"smallest area has ({smallest}); use per_class <= {smallest}")
    rng = np.random.default_rng(1234)  # the data set is fixed; split_seed picks the split
    texts, labels = [], []
    for c, docs in enumerate(by_area.values()):
        for i in sorted(rng.choice(len(docs), per_class, replace=False)):
            texts.append(docs[i])
            labels.append(c)
    return split_task("stdlib_topics", texts, labels, list(STDLIB_AREAS), split_seed)


def meaning_text(n: int = 400, split_seed: int = 0) -> TextTask:
    """qllm's ``meaning`` task (cooking vs computing) as sentences for a tokenizer."""
    from qllm.data import meaning

    d = meaning(n=n, split_seed=0)
    x = [*d.x_train.tolist(), *d.x_test.tolist()]
    y = [*d.y_train.tolist(), *d.y_test.tolist()]
    texts = [" ".join(d.vocab[i] for i in row if i) for row in x]
    return split_task("meaning", texts, y, ["cooking", "computing"], split_seed)


def _read_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            with path.open(newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
        if suffix in (".jsonl", ".json"):
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise DataError(f"text_classification: cannot read {str(path)!r}: {e}") from None
    raise DataError(f"text_classification: path {str(path)!r} must end in .csv, .tsv or .jsonl")


def text_classification(path: str | None = None, text_column: str = "text",
                        label_column: str = "label", split_seed: int = 0) -> TextTask:
    """A local CSV/TSV/JSONL file with a text and a label column; labels may be any strings
    (classes are their sorted distinct values)."""
    if not path:
        raise DataError("task 'text_classification' needs task_options={'path': FILE} "
                        "(a .csv, .tsv or .jsonl file)")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"text_classification: path {str(p)!r} is not a file")
    rows = _read_rows(p)
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or text_column not in row or label_column not in row:
            raise DataError(f"text_classification: row {i + 1} of {str(p)!r} lacks the columns "
                            f"text_column={text_column!r} and label_column={label_column!r}")
    raw = [str(r[label_column]) for r in rows]
    classes = sorted(set(raw))
    if len(classes) < 2 or len(rows) < 10:
        raise DataError(f"text_classification: {str(p)!r} needs at least 10 rows and 2 labels; "
                        f"it has {len(rows)} rows and labels {classes}")
    index = {c: i for i, c in enumerate(classes)}
    return split_task(p.stem, [str(r[text_column]) for r in rows], [index[c] for c in raw],
                      classes, split_seed)


TEXT_TASKS = {"stdlib_topics": stdlib_topics, "meaning": meaning_text,
              "text_classification": text_classification}


def load_text_task(name: str, **options) -> TextTask:
    """A text task by name (see ``TEXT_TASKS``); bad names and options raise DataError."""
    if not isinstance(name, str) or name not in TEXT_TASKS:
        raise DataError(f"unknown text task {name!r}; allowed: {', '.join(TEXT_TASKS)}")
    try:
        return TEXT_TASKS[name](**options)
    except TypeError as e:
        raise DataError(f"bad options for task {name!r}: {e}") from None
