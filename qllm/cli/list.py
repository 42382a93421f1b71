"""``qllm list [KIND]``: what this install can do, read from the registries (so a registered
ansatz, backend or task shows up, including those of ``--import`` modules and plugins).

    qllm list              # every kind, names only
    qllm list ansatze      # one kind, with a one-line description per name
"""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Callable


def _doc(obj, width: int = 90) -> str:
    """The first sentence of an object's docstring, at most ``width`` characters ('' when it
    has none)."""
    doc = (getattr(obj, "__doc__", None) or "").strip().split("\n\n")[0]
    first = " ".join(doc.split()).split(". ")[0].rstrip(".")
    return first if len(first) <= width else first[:width - 3].rstrip() + "..."


def _tasks() -> list[tuple[str, str]]:
    from qllm.data import TASKS

    return [(name, _doc(fn)) for name, fn in TASKS.items()]


def _backends() -> list[tuple[str, str]]:
    from qllm.backends import BACKENDS

    suffix = {"torch": "qllm's batched statevector engine (CPU or CUDA; exact, shots, noise)",
              "pennylane": "pennylane:<device>, e.g. pennylane:default.qubit",
              "aer": "aer, or aer:<fake device> (see `qllm list devices`)"}
    return [(name, suffix.get(name, _doc(fn))) for name, fn in BACKENDS.items()]


def _devices() -> list[tuple[str, str]]:
    from qllm.hardware.fake_devices import available_fake_backends

    return [(name, f"aer:{name}") for name in available_fake_backends()]


def _encodings() -> list[tuple[str, str]]:
    from qllm.circuits import ENCODINGS

    return [(name, _doc(fn)) for name, fn in ENCODINGS.items()]


def _ansatze() -> list[tuple[str, str]]:
    from qllm.circuits import ANSATZE

    return [(name, _doc(fn)) for name, fn in ANSATZE.items()]


def _adapters() -> list[tuple[str, str]]:
    """Adapters (LoRA, prompt tuning, ...) from ``qllm.adapters.ADAPTERS`` once that module
    exists; until then the list is empty."""
    try:
        registry = importlib.import_module("qllm.adapters").ADAPTERS
    except (ImportError, AttributeError):
        return []
    return [(name, _doc(obj)) for name, obj in registry.items()]


def _presets() -> list[tuple[str, str]]:
    from qllm.experiments.bench import PRESET_SEEDS, PRESET_TASKS

    return [(name, f"{len(PRESET_SEEDS[name])} seeds; tasks {', '.join(PRESET_TASKS[name])}")
            for name in PRESET_SEEDS]


def _targets() -> list[tuple[str, str]]:
    from qllm.cost.targets import TARGETS

    return [(name, f"{t.description} ({t.n_qubits} qubits)") for name, t in TARGETS.items()]


def _profiles() -> list[tuple[str, str]]:
    from qllm.cost.profiles import PROFILES

    return [(name, p.description) for name, p in PROFILES.items()]


# kind -> (what it is, where a config or flag uses it, lister)
KINDS: dict[str, tuple[str, str, Callable[[], list[tuple[str, str]]]]] = {
    "tasks": ("tasks", "train.task / --task", _tasks),
    "backends": ("backends", "quantum.backend / qllm eval --backend", _backends),
    "devices": ("fake IBM devices (offline calibration snapshots)",
                "--backend aer:<name>", _devices),
    "encodings": ("data encodings", "quantum.encoding", _encodings),
    "ansatze": ("ansatz families", "quantum.ansatz", _ansatze),
    "adapters": ("adapters for pretrained models", "adapter", _adapters),
    "presets": ("benchmark presets", "qllm bench --preset", _presets),
    "targets": ("transpile targets of the cost report", "qllm cost --target", _targets),
    "profiles": ("hardware profiles of the QPU-time projection", "qllm cost --profile",
                 _profiles),
}


def listing(kind: str | None = None) -> str:
    """The text ``qllm list [kind]`` prints.

    Args:
        kind: one of ``KINDS`` (names with descriptions), or None (every kind, names only).

    Returns:
        The listing; an empty kind says that nothing is installed.
    """
    if kind is None:
        out = []
        for name, (what, used, lister) in KINDS.items():
            names = [n for n, _ in lister()]
            out.append(textwrap.fill(f"{name} ({used}): "
                                     f"{', '.join(names) if names else 'none installed'}",
                                     width=100, subsequent_indent="    "))
        return "\n".join(out + ["", "qllm list KIND describes each name of one kind."])
    what, used, lister = KINDS[kind]
    rows = lister()
    if not rows:
        return f"no {what} are installed (used as {used})"
    width = max(len(n) for n, _ in rows)
    return "\n".join([f"{what} (used as {used}):"]
                     + [f"  {n:<{width}}  {d}".rstrip() for n, d in rows])


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list tasks, backends, devices, ansatze, presets, ...")
    p.add_argument("kind", nargs="?", choices=tuple(KINDS),
                   help="what to list (default: every kind, names only)")
    p.set_defaults(func=run)


def run(args) -> int:
    print(listing(args.kind))
    return 0
