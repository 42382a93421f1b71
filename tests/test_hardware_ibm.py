"""The ``ibm:`` backend (qiskit-ibm-runtime SamplerV2, Batch mode, local testing mode on fake
devices) and error mitigation on ``aer:fake_manila``, against exact values of the native engine;
job and PUB counts against counted ``SamplerV2.run`` calls."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from scipy import stats

from qllm import QuantumLayer
from qllm.backends import get_backend
from qllm.circuits import build_circuit
from qllm.errors import BackendError
from qllm.hardware import mitigation as mit
from qllm.spec import CircuitSpec, Op, inp, w


def _exact(spec, x, wt):
    return get_backend("torch").expval(spec, x, wt).numpy()


def test_richardson_and_folding_are_exact_where_they_must_be():
    # Richardson through (1, 3, 5) reproduces a quadratic's value at 0
    f = lambda s: 0.8 - 0.1 * s + 0.004 * s**2
    assert mit.extrapolate(np.array([f(1), f(3), f(5)]), (1, 3, 5)) == pytest.approx(0.8)
    assert sum(mit.richardson_coefficients((1, 3))) == pytest.approx(1.0)
    # folding keeps the unitary (qiskit.quantum_info reference)
    from qiskit.quantum_info import Operator

    qc = build_circuit(2, 1).to_qiskit().assign_parameters(np.linspace(0.1, 0.9, 6))
    folded = mit.fold(qc, 5)
    assert Operator(folded).equiv(Operator(qc))
    assert folded.size() == 5 * qc.size()  # U (U^dag U)^2
    assert folded.count_ops()["barrier"] == 4  # which keep the transpiler from cancelling


def test_readout_correction_recovers_a_known_confusion():
    rng = np.random.default_rng(0)
    p10, p01 = 0.05, 0.12  # P(read 1 | 0), P(read 0 | 1)
    true = rng.random((1, 50_000)) < 0.8  # P(1) = 0.8: <Z> = -0.6 (read: -0.43)
    flip = np.where(true, rng.random(true.shape) < p01, rng.random(true.shape) < p10)
    bits = (true ^ flip)[..., None]
    zeros = (rng.random((50_000, 1)) < p10)
    ones = ~(rng.random((50_000, 1)) < p01)
    signs = mit.sign_vectors(mit.confusion_from_bits(zeros, ones), 1)
    raw = mit.parity_means(bits, [0], mit.sign_vectors(None, 1))[0]
    fixed = mit.parity_means(bits, [0], signs)[0]
    assert abs(fixed + 0.6) < 0.02 < 0.1 < abs(raw + 0.6)


def test_ibm_fake_values_gradients_and_one_job_per_call():
    """Forward = 1 job with 1 PUB (one setting) binding all B rows; the parameter-shift backward
    = 1 more job binding every shifted row. Values and gradients within shot noise."""
    from qiskit_ibm_runtime import SamplerV2

    spec = build_circuit(2, 1)
    torch.manual_seed(0)
    layer = QuantumLayer(spec, "ibm:fake_manila", gradient="parameter-shift",
                         backend_options={"shots": 4000, "seed": 3, "mitigation": "readout"})
    layer = layer.double()
    x = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                   requires_grad=True)
    runs, original = [], SamplerV2.run

    def counted(self, pubs, *args, **kwargs):
        runs.append(len(pubs))
        return original(self, pubs, *args, **kwargs)

    with mock.patch.object(SamplerV2, "run", counted):
        out = layer(x)
        out.sum().backward()
    be = layer.backend
    assert be.execution_mode == "batch" and be.name == "ibm:fake_manila"
    assert runs == [1 + 2, 1 + 2] and be.stats.jobs == 2 and be.pubs == 6  # + calibration
    shifted = 3 * 2 * (2 + spec.n_weights)
    assert be.stats.circuits == 3 + 2 + shifted + 2
    assert be.stats.shots == 4000 * be.stats.circuits
    native = QuantumLayer(spec).double()
    native.load_state_dict(layer.state_dict())
    xn = x.detach().clone().requires_grad_(True)
    ref = native(xn)
    ref.sum().backward()
    assert np.abs(out.detach().numpy() - ref.detach().numpy()).max() < 0.08  # gate noise left
    assert np.abs(x.grad.numpy() - xn.grad.numpy()).max() < 0.15


def test_mitigation_beats_raw_on_aer_fake_manila():
    """Paired over 24 inputs at 4000 shots: |mitigated - exact| < |raw - exact| (one-sided
    Wilcoxon signed-rank test, p < 0.01), for readout and for readout+zne."""
    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("RY", (1,), (inp(1),)),
                           Op("CNOT", (0, 1)), Op("RY", (0,), (w(0),)), Op("CNOT", (1, 0)),
                           Op("RY", (1,), (w(1),)), Op("CNOT", (0, 1))), n_inputs=2,
                       observables=("ZI", "IZ"))
    g = torch.Generator().manual_seed(5)
    x = torch.rand(24, 2, dtype=torch.float64, generator=g) * np.pi
    wt = torch.tensor([0.4, 1.2], dtype=torch.float64)
    exact = _exact(spec, x, wt)
    err = {}
    for m in ("none", "readout", "readout+zne"):
        be = get_backend("aer:fake_manila", shots=4000, seed=11, mitigation=m)
        err[m] = np.abs(be.expval(spec, x, wt).numpy() - exact).ravel()
        # zne: 3 noise scales; readout: 2 calibration circuits per job
        assert be.stats.circuits == {"none": 24, "readout": 26, "readout+zne": 74}[m]
    for m in ("readout", "readout+zne"):
        assert err[m].mean() < err["none"].mean()
        assert stats.wilcoxon(err["none"], err[m], alternative="greater").pvalue < 0.01, m


def test_bad_options_are_refused():
    with pytest.raises(BackendError, match="mitigation 'magic' is not one of"):
        get_backend("ibm:fake_manila", mitigation="magic")
    with pytest.raises(BackendError, match="zne_scales"):
        get_backend("ibm:fake_manila", mitigation="zne", zne_scales=(1, 2))
    with pytest.raises(BackendError, match="positive int"):
        get_backend("ibm:fake_manila", shots=None)
    with pytest.raises(BackendError, match="mode 'open'"):
        get_backend("ibm:fake_manila", mode="open")
    with pytest.raises(BackendError, match="needs a device"):
        get_backend("ibm")
    with pytest.raises(BackendError, match="noisy fake device and shots"):
        get_backend("aer", shots=100, mitigation="readout")
    layer = QuantumLayer(build_circuit(2, 1), "ibm:fake_manila")  # inference is fine
    with torch.no_grad():
        assert layer(torch.rand(2, 2)).shape == (2, 2)
    with pytest.raises(BackendError, match="parameter-shift"):
        layer(torch.rand(2, 2)).sum().backward()


@pytest.mark.parametrize("mode", ["batch", "session", "job"])
def test_execution_modes_run_and_a_seed_repeats_the_counts(mode):
    spec = build_circuit(2, 1)
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(0))
    wt = torch.rand(spec.n_weights, generator=torch.Generator().manual_seed(1))
    outs = []
    for _ in range(2):
        be = get_backend("ibm:fake_manila", shots=200, seed=9, mode=mode)
        outs.append(be.expval(spec, x, wt))
        assert be.execution_mode == mode and be.stats.jobs == 1
        be.close()
    torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)


def test_a_real_device_without_credentials_fails_cleanly(monkeypatch, tmp_path):
    """No token in the environment and no saved account: one clear error, no network."""
    for var in ("QISKIT_IBM_TOKEN", "IBM_QUANTUM_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # where save_account would have written
    monkeypatch.setenv("QISKIT_IBM_RUNTIME_CONFIG_FILE", str(tmp_path / "none.json"))
    with pytest.raises(BackendError, match="QISKIT_IBM_TOKEN|save_account"):
        get_backend("ibm:ibm_torino")
