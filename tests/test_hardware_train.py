"""A hybrid transformer trains for a few steps on every hardware route; the results' measured
ledger equals what actually ran (primitive / device calls counted here by patching them), and the
stored projection is the run's own (its shots, gradient, steps)."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from qllm.config import TrainConfig
from qllm.data import TaskData
from qllm.train import train
from tests.hardware_helpers import tiny_config


def _task(n_train=2, n_test=1, seq=1):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_train + n_test, seq, 3, generator=g)
    y = torch.randint(0, 2, (n_train + n_test,), generator=g)
    return TaskData("parity", "classify", x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                    seq_len=seq, n_classes=2, input_dim=3)


def _counting(cls, method, calls):
    original = getattr(cls, method)

    def counted(self, *args, **kwargs):
        calls.append(args[0] if args else None)
        return original(self, *args, **kwargs)

    return mock.patch.object(cls, method, counted)


def _patches(route, calls):
    """(context managers counting the submissions, how to count circuits from them)."""
    if route.startswith("ibm") or "mitigation" in route:
        from qiskit_ibm_runtime import SamplerV2

        return [_counting(SamplerV2, "run", calls)], None
    if route.startswith("aer") or "qiskit" in route:
        from qiskit_aer import AerSimulator

        return [_counting(AerSimulator, "run", calls)], None
    if "lightning" in route:
        from pennylane_lightning.lightning_qubit import LightningQubit

        return [_counting(LightningQubit, "execute", calls),
                _counting(LightningQubit, "execute_and_compute_derivatives", calls)], None
    from pennylane.devices import DefaultQubit

    return [_counting(DefaultQubit, "execute", calls),
            _counting(DefaultQubit, "execute_and_compute_derivatives", calls)], None


ROUTES = {
    "default.qubit-parameter-shift": ("pennylane:default.qubit", "backprop",
                                      {"diff_method": "parameter-shift", "shots": 256}),
    "default.qubit-adjoint": ("pennylane:default.qubit", "backprop", {"diff_method": "adjoint"}),
    "lightning-adjoint": ("pennylane:lightning.qubit", "backprop", {"diff_method": "adjoint"}),
    "qiskit.remote-qllm-parameter-shift": ("pennylane:qiskit.remote", "parameter-shift",
                                           {"backend": "fake_manila", "shots": 256}),
    "aer-fake_torino": ("aer:fake_torino", "parameter-shift", {"shots": 256, "seed": 1}),
    "ibm-fake_manila": ("ibm:fake_manila", "parameter-shift", {"shots": 256, "seed": 1}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROUTES))
def test_a_model_trains_and_its_ledger_is_what_ran(name, tmp_path):
    backend, gradient, options = ROUTES[name]
    cfg = tiny_config(backend, gradient, **options)
    # qiskit.remote: one job per circuit, ~1 s each; fake_torino: Aer loads its 133-qubit noise
    # model at every job (~15 s)
    steps = 1 if "qiskit.remote" in name or "torino" in name else 2
    train_cfg = TrainConfig(task="parity", epochs=5, batch_size=1, max_steps=steps, seed=0,
                            progress=False)
    calls: list = []
    patches, _ = _patches(backend, calls)
    import qllm.train as train_module

    real_cost, before_cost = train_module._cost, []

    def cost(*args, **kwargs):  # the report's dry run is not part of the run
        before_cost.append(len(calls))
        return real_cost(*args, **kwargs)

    with patches[0], (patches[1] if len(patches) > 1 else mock.patch.dict({})), \
            mock.patch.object(train_module, "_cost", cost):
        res = train(cfg, train_cfg, out_dir=tmp_path, task=_task())
    assert res["steps"] == steps and all(l == l for l in res["losses"])  # finite, trained
    measured = res["cost"]["measured"]
    jobs = measured["train"]["jobs"] + measured["inference"]["jobs"]
    assert measured["train"]["steps"] == steps
    assert jobs == before_cost[0], (jobs, before_cost[0])
    route = next(iter(measured["routes"].values()))
    assert route["backend"] == backend
    assert route["jobs_per_circuit"] == ("qiskit" in backend)
    if route["jobs_per_circuit"]:  # every circuit its own job
        assert measured["train"]["circuits"] == measured["train"]["jobs"]
    settings = res["cost"]["settings"]
    assert settings["steps"] == steps  # the run's steps, not epochs x steps per epoch
    if "shots" in options:
        assert settings["shots"] == 256  # the run's shots, not 10,000
    if backend.startswith("ibm"):
        assert route["execution_mode"] == "batch"
        assert measured["train"]["jobs"] == 2 * steps  # forward + shifted circuits per step


def test_aer_device_layout_gradients_in_a_model_match_native():
    """aer on a fake device's layout and routing (noise off, exact): qllm's parameter-shift
    gives the native engine's autograd gradients for every parameter, embedding included."""
    from tests.hardware_helpers import batch, max_grad_error, model_pair, parameter_grads

    native, route = model_pair(tiny_config("aer:fake_manila", "parameter-shift", noise=False))
    x, y = batch()
    ref, got = parameter_grads(native, x, y), parameter_grads(route, x, y)
    assert "embed.weight" in got
    assert max_grad_error(ref, got) < 1e-6


def test_ibm_fake_gradients_in_a_model_are_within_shot_noise():
    """ibm:fake_manila (noise and 8192 shots): the embedding's gradient, which flows through
    the circuit's input gradient, points the native engine's way."""
    from tests.hardware_helpers import batch, model_pair, parameter_grads

    native, route = model_pair(tiny_config("ibm:fake_manila", "parameter-shift", shots=8192,
                                           seed=4, mitigation="readout"))
    x, y = batch()
    ref, got = parameter_grads(native, x, y), parameter_grads(route, x, y)
    for name in ("blocks.0.ffn.vqc.weights", "embed.weight"):
        a, b = ref[name].ravel(), got[name].ravel()
        cos = float(a @ b / (a.norm() * b.norm()))
        assert cos > 0.9, (name, cos)
        assert float((a - b).abs().max()) < 0.1 * float(a.abs().max()) + 0.02, name
