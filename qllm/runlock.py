"""One process per run folder: ``RunLock(folder)`` holds ``folder/.qllm.lock`` while a run
writes there, so two runs in one ``--out`` cannot delete each other's files.

The lock is an ``fcntl.flock`` on the lock file, which the kernel releases when its process dies
(however it dies), so a stale lock is simply taken over. The file also records the holder's pid,
host, start time and command line, for the refusal message, and for file systems without flock
(and locks written by hand) a recorded pid that is still alive on this host refuses too. A
process may re-enter a lock it holds (the CLI takes it, then ``train`` takes it again).

>>> import tempfile
>>> with RunLock(tempfile.mkdtemp()) as lock:
...     lock.held
True
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from qllm.errors import RunLockedError, StorageError
from qllm.results import pid_alive

LOCK_NAME = ".qllm.lock"
_HELD: dict[str, list] = {}  # resolved folder -> [open lock file, depth], for re-entry


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _holder(lock_path: Path) -> dict:
    try:
        info = json.loads(lock_path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _holder_alive(info: dict) -> bool:
    """Whether the recorded holder still runs (for locks that flock does not cover)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or info.get("host") != socket.gethostname():
        return False
    if not pid_alive(pid):
        return False
    started = info.get("start_time")
    return started is None or started == _start_time(pid)


def _refuse(folder: Path, info: dict) -> RunLockedError:
    who = f"process {info.get('pid', '?')}"
    if info.get("command"):
        who += f" ({info['command'][:120]})"
    return RunLockedError(
        f"run folder {str(folder)!r} is in use by {who} on {info.get('host', 'this host')}; "
        "wait for it to finish or give another --out (a lock whose process has died is taken "
        "over automatically)")


class RunLock:
    """Exclusive use of a run folder by this process.

    Args:
        folder: the run folder (created if missing).
    Raises (on entry):
        RunLockedError: another live process holds the folder; the message names it.
        StorageError: the lock file cannot be created (e.g. a read-only folder).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False

    def __enter__(self) -> RunLock:
        key = str(self.folder.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
        else:
            _HELD[key] = [self._acquire(), 1]
        self.held = True
        return self

    def _acquire(self):
        for _ in range(10):  # retry if the holder removed the file between our open and flock
            f = self._open_and_lock()
            try:
                same = os.fstat(f.fileno()).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if same:
                break
            f.close()
        return self._claim(f)

    def _open_and_lock(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: the recorded pid decides alone
            fcntl = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+b", buffering=0)  # unbuffered: no write pending at close
        except OSError as e:
            raise StorageError(f"cannot create the lock {str(self.path)!r}: {e.strerror}") from None
        try:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise _refuse(self.folder, _holder(self.path)) from None
        except OSError:  # no flock on this file system: the recorded pid decides alone
            pass
        return f

    def _claim(self, f):
        """Refuse a live holder that flock could not see, else record this process."""
        info = _holder(self.path)
        if _holder_alive(info):
            f.close()
            raise _refuse(self.folder, info)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "start_time": _start_time(os.getpid()), "since": time.time(),
                  "command": " ".join(sys.argv)}
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(record).encode())
        except OSError:  # a full disk: the flock still holds; the run's own writes will say so
            pass
        return f

    def __exit__(self, *exc) -> None:
        key = str(self.folder.resolve())
        entry = _HELD.get(key)
        self.held = False
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[key]
            try:  # remove the file while still holding it, so nobody sees a half-released lock
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            entry[0].close()
