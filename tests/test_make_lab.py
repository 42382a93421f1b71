"""``make lab``: JupyterLab on the repository root, --allow-root only as root, and the notebooks
extra installed once (a stamp). Checked on the command lines make would run (``make -n``); no
server is started."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def repo(tmp_path):
    """The Makefile and what its stamps depend on, with both stamps up to date."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").mkdir()
    past = time.time() - 60
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        os.utime(tmp_path / name, (past, past))
    (tmp_path / ".venv" / ".installed").touch()
    (tmp_path / ".venv" / ".notebooks-installed").touch()
    return tmp_path


def make_n(repo, *args) -> list[str]:
    # under `make test` the outer make's MAKEFLAGS/MAKELEVEL would add "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "lab", *args], cwd=repo, env=env,
                         capture_output=True, text=True, check=True).stdout
    return [" ".join(line.split()) for line in out.replace("\\\n", " ").splitlines()]


def test_lab_serves_the_repository_root_as_root_and_as_a_user(repo):
    for uid, allow_root in (("0", True), ("1000", False)):
        lines = make_n(repo, f"LAB_UID={uid}")
        assert len(lines) == 1, lines  # stamps fresh: no install, only the server
        cmd = lines[0]
        assert cmd.startswith(".venv/bin/jupyter lab ")
        assert f'--ServerApp.root_dir="{repo}"' in cmd or f"--ServerApp.root_dir={repo}" in cmd
        assert "--ServerApp.default_url=/lab/tree/notebooks" in cmd
        assert ("--allow-root" in cmd) == allow_root
    assert "--port 9999" in make_n(repo, "LAB_UID=1000", "LAB_FLAGS=--port 9999")[0]
    # the default comes from the user running make
    assert ("--allow-root" in make_n(repo)[0]) == (os.getuid() == 0)


def test_notebooks_extra_installs_once(repo):
    (repo / ".venv" / ".notebooks-installed").unlink()
    lines = make_n(repo, "LAB_UID=1000")
    assert any("pip install" in line and ".[dev,notebooks]" in line for line in lines)
    assert any(line == "touch .venv/.notebooks-installed" for line in lines)
    (repo / ".venv" / ".notebooks-installed").touch()
    assert not any("pip install" in line for line in make_n(repo, "LAB_UID=1000"))
