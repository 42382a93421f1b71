"""PennyLane's device conformance suite (``pl-device-test``) against ``qllm.torch``.

Flags, and why: ``--skip-ops`` turns tests of operations the device refuses with PennyLane's
usual error (continuous-variable gates, qutrit and mixed-state preparations) into skips. Exact
runs deselect autograd's backprop tests (backprop is torch only: the engine is PyTorch; autograd
gets parameter-shift). Shot runs deselect ``test_templates`` (decompositions, which shots do not
change; the exact run covers them) to keep the project's test run short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from qllm.errors import BackendError
from qllm.validate import is_int

EXACT_DESELECT = "not (test_gradients_autograd and backprop)"
SHOTS_DESELECT = "not test_templates"


def run_device_suite(shots: int | None = None, extra_args: tuple[str, ...] = (),
                     timeout_s: float = 1800) -> dict:
    """Run the suite in a subprocess.

    Args:
        shots: None for analytic, else the shots of every test.
        extra_args: more pytest arguments (e.g. ``("-x",)``).
        timeout_s: wall-clock limit.

    Returns:
        ``{"returncode", "counts": {"passed": ..., "skipped": ...}, "summary", "output"}``.

    Raises:
        BackendError: ``shots`` is not None or a positive int, or pl-device-test is missing.
    """
    if shots is not None and (not is_int(shots) or shots < 1):
        raise BackendError(f"shots must be None or a positive int, got {shots!r}")
    bindir = Path(sys.executable).parent
    exe = bindir / "pl-device-test"
    if not exe.exists():
        raise BackendError(f"pl-device-test not found next to {sys.executable}; "
                           "install the dev extra (pytest-mock and flaky)")
    # pl-device-test starts "pytest" from PATH: make it this environment's.
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [str(exe), "--device", "qllm.torch", "--skip-ops", "-q", "-p", "no:cacheprovider",
           "-rfEs", "-k", EXACT_DESELECT if shots is None else SHOTS_DESELECT]
    if shots is not None:
        cmd += ["--shots", str(shots)]
    proc = subprocess.run([*cmd, *extra_args], env=env, capture_output=True, text=True,
                          timeout=timeout_s)
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    counts = {k: int(v) for v, k in re.findall(
        r"(\d+) (passed|failed|skipped|xfailed|xpassed|deselected|errors?)", summary)}
    return {"returncode": proc.returncode, "counts": counts, "summary": summary,
            "output": proc.stdout + proc.stderr}
