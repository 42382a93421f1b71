"""What every result records (versions, machine), and the one atomic writer that JSON results and
checkpoints share.

``atomic_write(path, data)`` writes bytes to a temporary file in the target's folder, fsyncs it,
``os.replace``s it over the target and fsyncs the folder: a kill at any moment leaves either the
old file or the new one, never a mix. The temporary's name carries the writer's process id
(``.<name>.<pid>.<random>.tmp``), so a later write sweeps the temporaries of dead writers and
never touches those of a live one. A full disk (or any other write failure) removes the
temporary and raises one ``StorageError`` that says what happened, where, and that the previous
file is untouched. A Ctrl-C that lands mid-write is held until the new file is in place, then
raised: the interrupt never leaves a half-written file or a traceback from inside the writer.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from qllm.errors import StorageError

PACKAGES = ("qllm", "torch", "numpy", "pennylane", "pennylane-qiskit", "qiskit", "qiskit-aer",
            "qiskit-ibm-runtime", "scikit-learn")
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def versions(extra: tuple = ()) -> dict:
    """Python's and each package's version (None where not installed): qllm's stack, then
    ``extra`` (e.g. transformers and peft for a pretrained run)."""
    out = {"python": platform.python_version()}
    for p in (*PACKAGES, *extra):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def machine() -> dict:
    import torch

    info = {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _writer_pid(tmp: Path) -> int | None:
    """The pid in ``.<name>.<pid>.<random>.tmp``; None for another naming (older versions)."""
    parts = tmp.name.split(".")
    return int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None


def sweep_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove temporaries that killed writers left in ``folder`` (of ``name`` only, if given):
    ``.<name>.<pid>.<random>.tmp`` whose process is gone, and the pid-less ``.<name>.*``
    temporaries of older versions. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{name}.*" if name else ".*.tmp"
    removed = []
    for tmp in folder.glob(pattern):
        pid = _writer_pid(tmp)
        legacy = pid is None and name is not None and tmp.name != f".{name}"
        if (pid is not None and pid != os.getpid() and not pid_alive(pid)) or legacy:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _storage_error(e: OSError, path: Path) -> StorageError:
    if e.errno in _FULL:
        what = f"the disk is full (no space left on {str(path.parent)!r})"
    else:
        what = f"{e.strerror or type(e).__name__}"
    return StorageError(f"cannot write {str(path)!r}: {what}; the previous {path.name} (if any) "
                        "is untouched and no partial file was left")


def _fsync_folder(folder: Path) -> None:
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


class _RecordingFile:
    """A file whose write errors are remembered: a serializer (torch.save) may wrap an OSError
    in its own exception ("unexpected pos ..."), and the writer still needs to know the disk
    was full."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        try:
            self.f.flush()
        except OSError as e:
            self.error = e
            raise


def atomic_write(path: str | Path, data: bytes | Callable) -> Path:
    """Write a file atomically and durably (see the module docstring).

    Args:
        path: the target file; its folder is created if needed.
        data: the whole file's bytes, or a function that writes them to the file object it is
            given (e.g. ``lambda f: torch.save(obj, f)``).
    Returns:
        ``path`` as a Path.
    Raises:
        StorageError: the folder or file could not be written (disk full, permissions...).
    """
    with _sigint_deferred():
        return _atomic_write(Path(path), data)


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block ends, then raise it. Only the main thread can take signals,
    and only Python's own handler is replaced (a caller's custom handler is left alone)."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    caught = []
    signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def _atomic_write(path: Path, data: bytes | Callable) -> Path:
    tmp = f = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
        with os.fdopen(fd, "wb") as raw:
            f = _RecordingFile(raw)
            data(f) if callable(data) else f.write(data)
            f.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = e if isinstance(e, OSError) else getattr(f, "error", None)
        if cause is not None:
            raise _storage_error(cause, path) from None
        raise
    _fsync_folder(path.parent)
    return path


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as JSON through ``atomic_write``."""
    text = json.dumps(data, indent=2, default=str)
    return atomic_write(path, text.encode())
