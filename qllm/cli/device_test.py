"""``qllm device-test``: PennyLane's device conformance suite against ``qllm.torch``."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("device-test",
                       help="run PennyLane's device suite (pl-device-test) on qllm.torch")
    p.add_argument("--shots", type=int, help="shots per test (default: analytic)")
    p.set_defaults(func=run)


def run(args) -> int:
    from qllm.interop.device_suite import run_device_suite

    result = run_device_suite(args.shots)
    print(result["output"])
    return 0 if result["returncode"] == 0 else 1
