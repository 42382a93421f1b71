"""Tasks, all offline: real data that ships with installed packages, seeded synthetic tasks, and
loaders for the user's own text files.

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images shipped in its wheel) as 16 patch
  tokens of 2x2 pixels, 10 classes, a fixed seeded 80/20 split.
- ``meaning``: sentences from a small grammar about cooking vs computing (the character of the MC
  data set of Lorenz et al., "QNLP in practice", 2021), binary classification.
- ``parity``: bit strings, class = parity of the ones.
- ``copy`` / ``sort``: ``a b c | a b c`` and ``c a b | a b c`` as language modelling; the loss and
  metric cover only the part after the separator.
- ``text``: character-level language modelling on any text file (``task_options={"path": ...}``).
- ``stdlib_text``: character-level language modelling on English prose every machine has: the
  docstrings of a fixed list of Python standard-library modules, collected deterministically.

``load_task(name, **options)`` returns a ``TaskData``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from qllm.errors import DataError, lookup
from qllm.validate import is_int


@dataclass
class TaskData:
    name: str
    kind: str  # "classify" or "lm"
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    seq_len: int
    n_classes: int | None = None
    vocab_size: int | None = None  # token tasks
    input_dim: int | None = None  # feature tasks
    metric: str = "accuracy"  # or "perplexity"
    vocab: list[str] = field(default_factory=list)
    streams: list = field(default_factory=list)  # multimodal tasks (qllm.multimodal)
    x_val: torch.Tensor | None = None  # a validation split taken from the training data
    y_val: torch.Tensor | None = None

    def model_fields(self) -> dict:
        """The ModelConfig fields this task fixes."""
        d = {"task": self.kind, "block_size": self.seq_len, "vocab_size": self.vocab_size,
             "input_dim": self.input_dim}
        if self.kind == "classify":
            d["n_classes"] = self.n_classes
        if self.streams:
            d["streams"] = self.streams
        return d


def with_validation(task: TaskData, frac: float, seed: int) -> TaskData:
    """A copy of ``task`` whose training data gives up a seeded random ``frac`` of its examples
    (at least one) as the validation split; the test split is untouched.

    Args:
        task: a TaskData without a validation split.
        frac: in (0, 0.5].
        seed: the split's seed (the run's seed: seed-paired runs share their split).
    Returns:
        a TaskData with ``x_val``/``y_val`` set and ``x_train``/``y_train`` the rest.
    """
    import dataclasses

    n = len(task.x_train)
    if not 0 < frac <= 0.5 or n < 2:
        raise DataError(f"validation fraction must lie in (0, 0.5] and the task have >= 2 "
                        f"training examples; got val_frac={frac!r} with {n}")
    tr, va = _split(n, seed, frac)
    if len(va) == 0:
        tr, va = tr[1:], tr[:1]
    tr, va = torch.as_tensor(tr), torch.as_tensor(va)
    return dataclasses.replace(task, x_train=task.x_train[tr], y_train=task.y_train[tr],
                               x_val=task.x_train[va], y_val=task.y_train[va])


def _split(n: int, seed: int, test_frac: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_frac))
    return perm[n_test:], perm[:n_test]


def digits(split_seed: int = 0, patch: int = 2) -> TaskData:
    from sklearn.datasets import load_digits

    d = load_digits()
    img = torch.tensor(d.images, dtype=torch.float32) / 16.0  # (N, 8, 8) in [0, 1]
    N = img.shape[0]
    p = patch
    x = img.view(N, 8 // p, p, 8 // p, p).permute(0, 1, 3, 2, 4).reshape(N, (8 // p) ** 2, p * p)
    y = torch.tensor(d.target, dtype=torch.long)
    tr, te = _split(N, split_seed)
    return TaskData("digits", "classify", x[tr], y[tr], x[te], y[te], x.shape[1], n_classes=10,
                    input_dim=p * p)


_MC_WORDS = {
    "food": {"verb": ["cooks", "prepares", "bakes", "fries"], "obj": ["meal", "sauce", "dinner",
                                                                       "bread"]},
    "it": {"verb": ["debugs", "runs", "writes", "compiles"], "obj": ["program", "software",
                                                                     "application", "code"]},
}
_MC_SUBJ = ["man", "woman", "person", "chef", "engineer"]
_MC_ADJ = ["skillful", "tasty", "useful", "fresh", "new"]


def meaning(n: int = 400, split_seed: int = 0) -> TaskData:
    rng = np.random.default_rng(1234)  # the data set itself is fixed; split_seed picks the split
    vocab = ["<pad>"] + sorted({*_MC_SUBJ, *_MC_ADJ, *(w for t in _MC_WORDS.values()
                                                        for k in t.values() for w in k)})
    index = {w: i for i, w in enumerate(vocab)}
    seq_len = 6
    xs, ys = [], []
    seen = set()
    while len(xs) < n:
        label = int(rng.integers(2))
        words = _MC_WORDS["food" if label == 0 else "it"]
        s = []
        if rng.random() < 0.5:
            s.append(_MC_ADJ[rng.integers(len(_MC_ADJ))])
        s += [_MC_SUBJ[rng.integers(len(_MC_SUBJ))], words["verb"][rng.integers(4)]]
        if rng.random() < 0.5:
            s.append(_MC_ADJ[rng.integers(len(_MC_ADJ))])
        s.append(words["obj"][rng.integers(4)])
        key = " ".join(s)
        if key in seen and len(seen) < 900:
            continue
        seen.add(key)
        xs.append([index[t] for t in s] + [0] * (seq_len - len(s)))
        ys.append(label)
    x, y = torch.tensor(xs), torch.tensor(ys)
    tr, te = _split(n, split_seed)
    return TaskData("meaning", "classify", x[tr], y[tr], x[te], y[te], seq_len, n_classes=2,
                    vocab_size=len(vocab), vocab=vocab)


def parity(n: int = 2000, seq_len: int = 8, split_seed: int = 0) -> TaskData:
    g = torch.Generator().manual_seed(4321)
    x = torch.randint(0, 2, (n, seq_len), generator=g)
    y = x.sum(1) % 2
    tr, te = _split(n, split_seed)
    return TaskData("parity", "classify", x[tr], y[tr], x[te], y[te], seq_len, n_classes=2,
                    vocab_size=2, vocab=["0", "1"])


def _seq2seq(name: str, n: int, length: int, n_symbols: int, split_seed: int) -> TaskData:
    g = torch.Generator().manual_seed(999 if name == "copy" else 998)
    src = torch.randint(0, n_symbols, (n, length), generator=g)
    out = src if name == "copy" else src.sort(1).values
    sep = torch.full((n, 1), n_symbols)
    seq = torch.cat([src, sep, out], 1)  # (n, 2L+1)
    x, y = seq[:, :-1], seq[:, 1:].clone()
    y[:, :length] = -100  # predict only the answer
    tr, te = _split(n, split_seed)
    vocab = [str(i) for i in range(n_symbols)] + ["|"]
    return TaskData(name, "lm", x[tr], y[tr], x[te], y[te], 2 * length, vocab_size=n_symbols + 1,
                    metric="accuracy", vocab=vocab)


def copy_task(n: int = 2000, length: int = 5, n_symbols: int = 8, split_seed: int = 0) -> TaskData:
    return _seq2seq("copy", n, length, n_symbols, split_seed)


def sort_task(n: int = 2000, length: int = 5, n_symbols: int = 8, split_seed: int = 0) -> TaskData:
    return _seq2seq("sort", n, length, n_symbols, split_seed)


def char_lm(text: str, name: str = "text", seq_len: int = 32, test_frac: float = 0.1,
            max_chars: int | None = None) -> TaskData:
    """Character-level LM: contiguous train/test split, non-overlapping windows of seq_len + 1."""
    if max_chars:
        text = text[:max_chars]
    if len(text) < 4 * (seq_len + 1):
        raise DataError(f"text for {name!r} has {len(text)} characters; need at least "
                        f"{4 * (seq_len + 1)} for seq_len={seq_len}")
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text])
    cut = int(len(ids) * (1 - test_frac))

    def windows(t: torch.Tensor):
        n = (len(t) - 1) // seq_len
        x = t[: n * seq_len].view(n, seq_len)
        y = t[1: n * seq_len + 1].view(n, seq_len)
        return x, y

    xtr, ytr = windows(ids[:cut])
    xte, yte = windows(ids[cut:])
    return TaskData(name, "lm", xtr, ytr, xte, yte, seq_len, vocab_size=len(vocab),
                    metric="perplexity", vocab=vocab)


def text_file(path: str | Path | None = None, seq_len: int = 32, max_chars: int | None = None,
              encoding: str = "utf-8") -> TaskData:
    if path is None:
        raise DataError("task 'text' needs task_options={'path': 'your_corpus.txt'}")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"text file {str(p)!r} does not exist or is not a file")
    try:
        text = p.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise DataError(f"text file {str(p)!r} is not valid {encoding}: {e}") from None
    return char_lm(text, "text", seq_len, max_chars=max_chars)


STDLIB_MODULES = ("abc", "argparse", "base64", "bisect", "calendar", "collections", "contextlib",
                  "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions",
                  "functools", "heapq", "inspect", "io", "itertools", "json", "logging", "math",
                  "operator", "os", "pathlib", "pickle", "random", "re", "shutil", "statistics",
                  "string", "subprocess", "tempfile", "textwrap", "threading", "typing", "unittest",
                  "uuid", "zipfile")


def stdlib_corpus(max_chars: int = 200_000) -> str:
    """English prose from standard-library docstrings, in a fixed order (modules, then members
    sorted by name), ASCII only so the vocabulary is the same on every machine."""
    parts = []
    for name in STDLIB_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        docs = [inspect.getdoc(mod) or ""]
        for attr in sorted(dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                docs.append(inspect.getdoc(obj) or "")
        parts += [d for d in docs if d]
    text = "\n\n".join(parts).encode("ascii", "ignore").decode()
    return text[:max_chars]


def stdlib_text(seq_len: int = 32, max_chars: int = 200_000) -> TaskData:
    return char_lm(stdlib_corpus(max_chars), "stdlib_text", seq_len)


def digits_qa(split_seed: int = 0, questions: int = 2, seed: int = 0) -> TaskData:
    """A digit image and a question ("what comes after ?"): the answer digit (qllm.multimodal)."""
    from qllm.multimodal import digits_questions

    return TaskData(**digits_questions(digits(split_seed), questions, seed))


TASKS = {"digits": digits, "meaning": meaning, "parity": parity, "copy": copy_task,
         "sort": sort_task, "text": text_file, "stdlib_text": stdlib_text, "digits_qa": digits_qa}


# Smallest valid value of the integer options the built-in tasks take.
_INT_OPTIONS = {"n": 10, "seq_len": 1, "length": 1, "n_symbols": 2, "split_seed": 0,
                "max_chars": 1}


def _check_options(name: str, options: dict) -> None:
    for key, value in options.items():
        low = _INT_OPTIONS.get(key)
        if low is not None and not (value is None and key == "max_chars") and (
                not is_int(value) or value < low):
            raise DataError(f"task {name!r}: option {key}={value!r} must be an int >= {low}")
    if "split_seed" in options:
        from qllm.seeds import check_seed

        check_seed(options["split_seed"], f"task {name!r}: option split_seed", DataError)
    if name == "digits" and options.get("patch", 2) not in (1, 2, 4, 8):
        raise DataError(f"task 'digits': option patch={options['patch']!r} must divide the 8x8 "
                        "image: one of 1, 2, 4, 8")


def load_task(name: str, **options) -> TaskData:
    """A task by name (see ``TASKS``); bad names, options and files raise DataError."""
    lookup(TASKS, name, "task", DataError)
    _check_options(name, options)
    try:
        return TASKS[name](**options)
    except TypeError as e:
        raise DataError(f"bad options for task {name!r}: {e}") from None
