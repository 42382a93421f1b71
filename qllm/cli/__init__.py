"""Command line: ``qllm train | finetune | eval | bench | cost | compress | attribution | list |
device-test``.

    qllm bench --preset quick                       # classical vs hybrid on four tasks (main job)
    qllm train --task digits --set ffn=quantum --out runs/qffn
    qllm train --out runs/qffn --resume             # continue from runs/qffn/checkpoint.pt
    qllm eval runs/qffn/checkpoint.pt --backend aer:fake_manila --shots 4096
    qllm cost runs/qffn/results.json                # or a JSON model config
    qllm attribution results/quick                  # hybrids vs controls: intervals, verdicts
    qllm list ansatze                               # what the registries hold
    qllm device-test --shots 10000                  # PennyLane's device suite on qllm.torch
    qllm --import my_circuits eval runs/custom/checkpoint.pt   # load your registrations first

Registrations (``register_ansatz``, ``register_backend``, ...) made by a module live only in the
process that imports it: name the module with ``--import MODULE`` (repeatable), or install it as
an entry point of the group ``qllm.plugins``, which every ``qllm`` command loads at start-up.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from qllm.cli import attribution, bench, compress, cost, device_test, eval, finetune, train
from qllm.cli import list as list_cmd
from qllm.errors import ConfigError, QllmError

# One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``: a new command is a
# new module and one entry here.
COMMANDS = (train, eval, bench, cost, finetune, compress, attribution, list_cmd, device_test)
PLUGIN_GROUP = "qllm.plugins"


def _version() -> str:
    from qllm import __version__

    return f"qllm {__version__}"


def load_plugins(group: str = PLUGIN_GROUP) -> list[str]:
    """Load every entry point of ``group``: a module is imported (its registrations run); a
    loaded callable is called with no arguments. Returns the entry-point names loaded."""
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as e:  # noqa: BLE001 - a broken plugin must name itself, not crash
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) of entry-point group {group!r} "
                              f"failed to load: {type(e).__name__}: {e}") from None
        loaded.append(ep.name)
    return loaded


def import_modules(names: list[str]) -> None:
    """Import each ``--import`` module (a dotted name on ``sys.path``; the current folder
    included) so its registrations run before the command."""
    if "" not in sys.path:
        sys.path.insert(0, "")  # `qllm --import my_circuits` finds ./my_circuits.py
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"--import {name!r}: cannot import it ({e}); give a module name "
                              "on sys.path, e.g. my_circuits for ./my_circuits.py") from None
        except Exception as e:  # noqa: BLE001 - the module's own error, named, not a traceback
            raise ConfigError(f"--import {name!r} failed while importing: "
                              f"{type(e).__name__}: {e}") from None


class _Parser(argparse.ArgumentParser):
    """Bad flags end in one line and exit status 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qllm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, so its register_* calls apply (repeatable)")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (2 for bad input, 130 for Ctrl-C).

    A reader that stops early (``qllm list | head -1``) ends the command quietly with status
    ``SIGPIPE_STATUS``, as Python's docs advise (signal module, "Note on SIGPIPE"): stdout is
    pointed at devnull, so the interpreter's last flush cannot fail again.
    """
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe raises here, not at interpreter exit
    except BrokenPipeError:
        _stdout_to_devnull()
        return SIGPIPE_STATUS


# 128 + SIGPIPE: what a shell reports for a process stopped by a closed pipe
SIGPIPE_STATUS = 141


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout replaced by an object without a file
        sys.stdout = os.fdopen(devnull, "w")


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_plugins()
        import_modules(args.imports)
        return args.func(args)
    except QllmError as e:
        print(f"qllm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # `qllm train` says how to resume; the others have nothing to keep
        print(f"\nqllm: {args.command} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
