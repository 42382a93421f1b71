"""Hardware credentials come only from the environment or the saved account, and a canary token
never shows up in logs, results, checkpoints or error messages."""

from __future__ import annotations

import json
import logging
import traceback

import pytest
import torch

from qllm.backends import get_backend
from qllm.errors import BackendError
from qllm.hardware import credentials
from qllm.hardware.credentials import check_no_credentials, hardware_token, redact
from qllm.quantum_layer import QuantumLayer
from tests.random_specs import random_spec

CANARY = "CANARY-tok-9f8e7d6c5b4a3210"


class LeakyService:
    """Stands in for QiskitRuntimeService (no network in tests), and behaves like a careless
    library: it logs the token at DEBUG and puts it in its exception message."""

    def __init__(self, token=None, **kwargs):
        logging.getLogger("leaky.provider").debug("connecting with token %s", token)
        raise RuntimeError(f"401 Unauthorized: token={token} url=https://iam.example/?apikey={token}")


def _everything(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_canary_token_appears_nowhere(monkeypatch, caplog, tmp_path):
    import qiskit_ibm_runtime

    monkeypatch.setenv("QISKIT_IBM_TOKEN", CANARY)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", LeakyService)
    caplog.set_level(logging.DEBUG)
    texts = []

    # 1. a real-hardware device named in a config: the connection fails, cleanly
    spec = random_spec(5, n_qubits=2)
    x, w = torch.rand(2, spec.n_inputs), torch.rand(spec.n_weights)
    hw = get_backend("pennylane:qiskit.remote", backend="ibm_brisbane", shots=100)
    with pytest.raises(BackendError, match="could not connect to IBM Quantum") as err:
        hw.expval(spec, x, w)
    texts.append(_everything(err.value))
    assert "***" in str(err.value)  # the provider's message is kept, with the secret masked

    # 2. a config that carries the token itself is refused without echoing it
    with pytest.raises(BackendError, match="credential") as err:
        get_backend("pennylane:default.qubit", token=CANARY)
    texts.append(_everything(err.value))

    # 3. simulators used normally, then a results dict and a checkpoint-like dict are saved
    layer = QuantumLayer(spec, backend="aer:fake_manila", shots=64, seed=0,
                         gradient="parameter-shift")
    layer(x).sum().backward()
    native = get_backend("torch", shots=32, seed=1)
    native.expval(spec, x, w)
    with pytest.raises(BackendError) as err:  # an Aer-side failure
        big = random_spec(1, n_qubits=6)
        get_backend("aer:fake_manila").expval(big, torch.rand(1, big.n_inputs),
                                              torch.rand(big.n_weights))
    texts.append(_everything(err.value))
    results = {"backends": [repr(layer), repr(hw), hw.name, hw.device_options, native.name],
               "stats": [layer.backend.stats.as_dict(), native.stats.as_dict()]}
    texts.append(json.dumps(results, default=str))
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": layer.state_dict(), "results": results}, path)

    # 4. nowhere: captured logs (messages, formatted text), results, checkpoint, errors
    texts += [caplog.text] + [r.getMessage() for r in caplog.records]
    assert any("connecting with token" in t for t in texts)  # the leaky log line was captured
    for t in texts:
        assert CANARY not in t
    assert CANARY.encode() not in path.read_bytes()


def test_token_only_from_environment(monkeypatch):
    for var in credentials.TOKEN_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert hardware_token() is None
    monkeypatch.setenv("IBM_QUANTUM_TOKEN", "second-choice-token")
    assert hardware_token() == "second-choice-token"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "first-choice-token")
    assert hardware_token() == "first-choice-token"


def test_no_token_and_no_saved_account_is_a_clear_error(monkeypatch, tmp_path):
    for var in credentials.TOKEN_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.qiskit/qiskit-ibm.json here
    from qiskit_ibm_runtime.accounts import management

    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE",
                        str(tmp_path / "qiskit-ibm.json"), raising=False)
    with pytest.raises(BackendError, match="QISKIT_IBM_TOKEN"):
        credentials.ibm_service()


@pytest.mark.parametrize("key", ["token", "TOKEN", "api_key", "password"])
def test_credential_options_are_refused_by_name(key):
    with pytest.raises(BackendError) as err:
        check_no_credentials({key: "s3cr3t-value-123"}, "pennylane:qiskit.remote")
    assert key in str(err.value) and "s3cr3t-value-123" not in str(err.value)


def test_redact(monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", CANARY)
    assert redact(f"x {CANARY} y") == "x *** y"
    nested = {"a": [f"token: {CANARY}", ("Bearer abcdef123456",)], "b": 3}
    assert redact(nested) == {"a": ["token: ***", ("Bearer ***",)], "b": 3}
    assert redact("password=hunter2xyz&user=bob") == "password=***&user=bob"
    assert redact("no secrets here") == "no secrets here"
