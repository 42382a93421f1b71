"""Command line: ``qllm train | eval | bench | cost``.

    qllm bench --preset quick                       # classical vs hybrid on digits (main job)
    qllm train --task digits --set ffn=quantum --out runs/qffn
    qllm train --out runs/qffn --resume             # continue from runs/qffn/checkpoint.pt
    qllm eval runs/qffn/checkpoint.pt --backend aer:fake_manila --shots 4096
    qllm cost runs/qffn/results.json                # or a JSON model config
"""

from __future__ import annotations

import argparse
import sys

from qllm.cli import bench, cost, eval, train
from qllm.errors import QllmError

# One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``: a new command is a
# new module and one entry here.
COMMANDS = (train, eval, bench, cost)


class _Parser(argparse.ArgumentParser):
    """Bad flags end in one line and exit status 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qllm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QllmError as e:
        print(f"qllm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # `qllm train` says how to resume; the others have nothing to keep
        print(f"\nqllm: {args.command} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
