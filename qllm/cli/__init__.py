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

from qllm.cli import bench, cost, eval, finetune, train
from qllm.errors import QllmError

# One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``: a new command is a
# new module and one entry here.
COMMANDS = (train, eval, bench, cost, finetune)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qllm", description=__doc__,
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


if __name__ == "__main__":
    sys.exit(main())
