"""The one seed rule of the library: a seed is an int in [0, 2**63 - 1] (or None where a call
draws a fresh one). Every generator qllm feeds (torch, numpy, Python ``random``, Aer) accepts that
range, so a seed that passes here never overflows later; ``fold`` maps the combinations qllm
derives from a seed (seed x constant + epoch) back into the same range.

>>> check_seed(7, "seed")
7
>>> fold(2**63 * 3 + 5)
5
"""

from __future__ import annotations

from qllm.errors import QllmError
from qllm.validate import is_int

SEED_MAX = 2**63 - 1


def check_seed(value, name: str = "seed", error: type[QllmError] | None = None,
               allow_none: bool = False):
    """``value`` if it is a valid seed, else ``error`` (default ConfigError) naming ``name``.

    Args:
        value: the seed to check.
        name: the argument's name, for the message.
        error: the QllmError subclass to raise (backends raise BackendError).
        allow_none: whether None (draw a random seed) is accepted.
    Returns:
        ``value`` unchanged.
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or not 0 <= value <= SEED_MAX:
        if error is None:
            from qllm.errors import ConfigError as error
        allowed = "None or an int" if allow_none else "an int"
        raise error(f"{name} must be {allowed} in [0, 2**63 - 1], got {value!r}")
    return value


def fold(value: int) -> int:
    """A derived seed folded into [0, 2**63 - 1]."""
    return int(value) % (SEED_MAX + 1)
