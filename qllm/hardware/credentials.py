"""Hardware credentials: read only from the environment or the provider's saved account, and kept
out of configs, logs, results, checkpoints and error messages.

- ``hardware_token()`` reads ``QISKIT_IBM_TOKEN`` (or ``IBM_QUANTUM_TOKEN``); nothing else.
- ``ibm_service()`` / ``ibm_backend(name)`` connect to IBM Quantum with that token, or with the
  account saved by ``QiskitRuntimeService.save_account`` when no token is set.
- ``check_no_credentials(options)`` refuses options (from a config) that carry a credential.
- ``redact(obj)`` replaces every known secret (and ``token=...``-style values) with ``***`` in a
  string, or recursively in dicts/lists; ``install_log_redaction()`` applies it to every log record
  created afterwards (message, arguments and traceback).

>>> redact("token=abc123secret and more")
'token=*** and more'
"""

from __future__ import annotations

import logging
import os
import re

from qllm.errors import BackendError

TOKEN_ENV_VARS = ("QISKIT_IBM_TOKEN", "IBM_QUANTUM_TOKEN")
# Option keys a config must never carry: credentials come from the environment only.
CREDENTIAL_KEYS = ("token", "api_key", "apikey", "password", "secret", "access_key",
                   "secret_access_key", "ibmqx_token", "auth")
MASK = "***"
_MIN_SECRET = 6  # shorter values would mask innocent text
_KEY_VALUE = re.compile(
    r"(?i)\b(token|api[_-]?key|apikey|password|secret|authorization|bearer)(\s*[=:]\s*|\s+)"
    r"(['\"]?)(?!\*\*\*)([^\s'\",;&}]+)")


def secret_values() -> list[str]:
    """Every secret currently known: the values of the token environment variables."""
    vals = {os.environ.get(v, "") for v in TOKEN_ENV_VARS}
    return sorted((v for v in vals if len(v) >= _MIN_SECRET), key=len, reverse=True)


def redact(obj):
    """A copy of ``obj`` (str, or dict/list/tuple of them) with secrets replaced by ``***``."""
    if isinstance(obj, str):
        for s in secret_values():
            obj = obj.replace(s, MASK)
        return _KEY_VALUE.sub(lambda m: m.group(1) + m.group(2) + m.group(3) + MASK, obj)
    if isinstance(obj, dict):
        return {redact(k): redact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v) for v in obj)
    return obj


def hardware_token() -> str | None:
    """The IBM Quantum token from the environment, or None (then the saved account is used)."""
    install_log_redaction()
    for var in TOKEN_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    return None


def check_no_credentials(options: dict, where: str) -> None:
    """Refuse options that carry a credential; the message names the key, never the value."""
    for key in options:
        if str(key).lower() in CREDENTIAL_KEYS:
            raise BackendError(
                f"{where}: option {key!r} looks like a credential; credentials are never taken "
                f"from configs. Set {TOKEN_ENV_VARS[0]} in the environment or save an account with "
                "QiskitRuntimeService.save_account().")


def ibm_service(channel: str | None = None, instance: str | None = None):
    """A ``QiskitRuntimeService`` from the environment token or the saved account."""
    token = hardware_token()
    try:
        from qiskit_ibm_runtime import QiskitRuntimeService

        kwargs = {"channel": channel} if channel else {}
        if instance:
            kwargs["instance"] = instance
        if token:
            kwargs.setdefault("channel", "ibm_quantum_platform")
            return QiskitRuntimeService(token=token, **kwargs)
        return QiskitRuntimeService(**kwargs)
    except Exception as e:  # noqa: BLE001 - any provider failure becomes one clean error
        msg = redact(f"{type(e).__name__}: {e}")
    raise BackendError(f"could not connect to IBM Quantum ({msg}). Set {TOKEN_ENV_VARS[0]} or "
                       "save an account with QiskitRuntimeService.save_account().")


def ibm_backend(name: str, channel: str | None = None, instance: str | None = None):
    """A real IBM backend object by name (e.g. ``"ibm_brisbane"``)."""
    service = ibm_service(channel, instance)
    try:
        return service.backend(name)
    except Exception as e:  # noqa: BLE001
        msg = redact(f"{type(e).__name__}: {e}")
    raise BackendError(f"IBM backend {name!r} is not available ({msg})")


# -- logging ------------------------------------------------------------------------------
_installed = False


def install_log_redaction() -> None:
    """Redact every log record created from now on (idempotent; wraps the record factory, so it
    covers every logger and handler, including ones added later)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            record.msg = redact(record.getMessage())
            record.args = ()
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        except Exception:  # noqa: BLE001, S110 - logging must never raise
            pass
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
