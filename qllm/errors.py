"""One exception family. Each subclasses the built-in a caller would expect to catch."""


class QllmError(Exception):
    """Base class of every error qllm raises on purpose."""


class SpecError(QllmError, ValueError):
    """A circuit specification, gate or observable is malformed."""


class InputError(QllmError, ValueError):
    """A tensor passed to a public call has the wrong shape, dtype or non-finite values."""


class InputTypeError(QllmError, TypeError):
    """A tensor or argument has the wrong type (e.g. integer angles)."""


class BackendError(QllmError, ValueError):
    """Unknown backend name, bad backend options, or a request the backend cannot serve."""


class MemoryBudgetError(QllmError, MemoryError):
    """A call would need more memory than the budget allows; raised before allocating."""


class ConfigError(QllmError, ValueError):
    """A config names an unknown field or holds an invalid value."""


class CheckpointError(QllmError, ValueError):
    """A checkpoint is missing, truncated, foreign or unsafe."""


class DataError(QllmError, ValueError):
    """A task name, data path or data file is invalid."""


class StorageError(QllmError, OSError):
    """A file could not be written (disk full, no permission); nothing partial was left behind."""


class RunLockedError(QllmError, RuntimeError):
    """A run folder is in use by another live process."""


def lookup(table: dict, name, what: str, error: type[QllmError]):
    """``table[name]``, or ``error`` saying "unknown <what> <name>; allowed <what>s: ..." with
    every known name: the one way qllm looks a name up in a registry."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise error(f"unknown {what} {name!r}; allowed {what}s: {', '.join(table)}")
