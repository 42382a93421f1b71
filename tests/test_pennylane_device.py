"""The ``qllm.torch`` PennyLane device against default.qubit, and PennyLane's own device suite."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane.exceptions import DeviceError
from scipy import stats

from qllm.errors import BackendError
from qllm.interop.device_suite import run_device_suite
from qllm.interop.pennylane_device import QllmTorchDevice
from tests.fit_helpers import mse_losses

# Gates drawn by the random circuits: qllm's table, and some it has to decompose.
_ONE = [qml.RX, qml.RY, qml.RZ, qml.PhaseShift, qml.Hadamard, qml.S, qml.T, qml.SX]
_TWO = [qml.CNOT, qml.CZ, qml.CRX, qml.CRZ, qml.IsingXX, qml.IsingYY, qml.IsingZZ,
        qml.SingleExcitation, qml.ISWAP, qml.CY]


def _random_qfunc(n: int, depth: int, seed: int):
    """A random circuit reading broadcast inputs ``x [B, n]`` and weights ``w [depth]``."""
    rng = np.random.default_rng(seed)
    plan = []
    for k in range(depth):
        if rng.random() < 0.5:
            plan.append((_ONE[rng.integers(len(_ONE))], [int(rng.integers(n))], k))
        else:
            a, b = rng.choice(n, 2, replace=False)
            plan.append((_TWO[rng.integers(len(_TWO))], [int(a), int(b)], k))

    def qfunc(x, w):
        qml.AngleEmbedding(x, wires=range(n), rotation="Y")
        for gate, wires, k in plan:
            args = (w[k],) if gate.num_params else ()
            gate(*args, wires=wires)
            if k % 3 == 0:
                qml.RX(x[..., k % n] * w[k], wires=wires[0])  # data re-uploading

    return qfunc


def _pair(n: int, measure, seed: int = 0, **qnode_kwargs):
    qfunc = _random_qfunc(n, 12, seed)

    def circuit(x, w):
        qfunc(x, w)
        return measure(n)

    ours = qml.QNode(circuit, qml.device("qllm.torch", wires=n), interface="torch", **qnode_kwargs)
    ref = qml.QNode(circuit, qml.device("default.qubit", wires=n), interface="torch",
                    **qnode_kwargs)
    return ours, ref


def _args(n: int, B: int | None, seed: int):
    g = torch.Generator().manual_seed(seed)
    shape = (B, n) if B else (n,)
    x = torch.rand(*shape, generator=g, dtype=torch.float64) * np.pi
    w = (torch.rand(12, generator=g, dtype=torch.float64) * 2 * np.pi).requires_grad_()
    return x, w


def _flat(res) -> torch.Tensor:
    if isinstance(res, (tuple, list)):
        return torch.cat([torch.as_tensor(r).reshape(-1) for r in res])
    return torch.as_tensor(res).reshape(-1)


_MEASUREMENTS = {
    "pauli_words": lambda n: [qml.expval(qml.PauliZ(0)), qml.expval(qml.X(1) @ qml.Y(n - 1)),
                              qml.expval(qml.Identity(0))],
    "pauli_sum": lambda n: qml.expval(0.7 * qml.Z(0) @ qml.Z(1) - 1.3 * qml.X(n - 1) + 0.2),
    "probs_var": lambda n: [qml.probs(wires=[0, n - 1]), qml.var(qml.Y(1)),
                            qml.var(qml.Z(0) + qml.X(1))],
    "hermitian": lambda n: qml.expval(qml.Hermitian(np.array([[1.0, 0.5], [0.5, -2.0]]), 0)),
    "state": lambda n: qml.state(),
}


@pytest.mark.parametrize("kind", sorted(_MEASUREMENTS))
@pytest.mark.parametrize("B", [None, 7])
def test_values_and_gradients_match_default_qubit(kind, B):
    n = 4
    ours, ref = _pair(n, _MEASUREMENTS[kind], seed=sorted(_MEASUREMENTS).index(kind))
    x, w = _args(n, B, seed=1)
    a, b = _flat(ours(x, w)), _flat(ref(x, w))
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=1e-10)
    (ga,) = torch.autograd.grad(_flat(ours(x, w)).abs().pow(2).sum(), w)
    (gb,) = torch.autograd.grad(_flat(ref(x, w)).abs().pow(2).sum(), w)
    assert torch.allclose(ga, gb, atol=1e-9)


def test_gradient_matches_finite_differences():
    n = 3
    ours, _ = _pair(n, _MEASUREMENTS["pauli_sum"], seed=3)
    x, w = _args(n, 5, seed=2)
    (g,) = torch.autograd.grad(ours(x, w).sum(), w)
    eps = 1e-6
    for k in range(0, 12, 3):
        e = torch.zeros(12, dtype=torch.float64)
        e[k] = eps
        fd = (ours(x, w.detach() + e).sum() - ours(x, w.detach() - e).sum()) / (2 * eps)
        assert abs(float(g[k]) - float(fd)) < 1e-6


def test_parameter_shift_and_autograd_interface_match_default_qubit():
    from pennylane import numpy as pnp

    n = 3

    def circuit(w):
        _random_qfunc(n, 12, 5)(pnp.array([0.3, 0.8, 1.1]), w)
        return qml.expval(qml.Z(0) @ qml.X(2))

    w = pnp.array(np.random.default_rng(4).uniform(0, 6, 12), requires_grad=True)
    ours = qml.QNode(circuit, qml.device("qllm.torch", wires=n), diff_method="parameter-shift")
    ref = qml.QNode(circuit, qml.device("default.qubit", wires=n), diff_method="backprop")
    assert np.allclose(ours(w), ref(w), atol=1e-10)
    assert np.allclose(qml.grad(ours)(w), qml.grad(ref)(w), atol=1e-8)


def test_basis_state_order_matches_pennylane():
    """Wire 0 is the most significant bit, as in default.qubit."""
    dev = qml.device("qllm.torch", wires=3)

    @qml.qnode(dev)
    def circuit():
        qml.PauliX(0)  # |100> = index 4
        return qml.probs(wires=[0, 1, 2]), qml.expval(qml.Z(0)), qml.expval(qml.Z(2))

    probs, z0, z2 = circuit()
    assert int(np.argmax(probs)) == 4 and float(z0) == -1.0 and float(z2) == 1.0


def test_custom_wire_labels():
    def circuit(x):
        qml.RY(x, wires="a")
        qml.CNOT(wires=["a", 7])
        return qml.expval(qml.Z(7)), qml.probs(wires=["a"])

    ours = qml.QNode(circuit, qml.device("qllm.torch", wires=["a", 7, "c"]))
    ref = qml.QNode(circuit, qml.device("default.qubit", wires=["a", 7, "c"]))
    assert np.allclose(_flat(ours(0.4)), _flat(ref(0.4)), atol=1e-12)


def test_shots_are_seeded_and_follow_the_exact_distribution():
    n = 3
    qfunc = _random_qfunc(n, 12, 7)
    x, w = _args(n, None, seed=3)

    def circuit(x, w):
        qfunc(x, w)
        return qml.counts(wires=range(n)), qml.expval(qml.Z(0))

    def sampled(seed):
        qnode = qml.set_shots(qml.QNode(circuit, qml.device("qllm.torch", wires=n, seed=seed)),
                              20000)
        return qnode(x.numpy(), w.detach().numpy())

    (c1, e1), (c2, e2), (c3, _) = sampled(11), sampled(11), sampled(12)
    assert c1 == c2 and float(e1) == float(e2) and c1 != c3
    exact = qml.QNode(lambda x, w: (qfunc(x, w), qml.probs(wires=range(n)))[1],
                      qml.device("default.qubit", wires=n))(x.numpy(), w.detach().numpy())
    observed = np.array([c1.get(format(k, f"0{n}b"), 0) for k in range(2**n)])
    keep = exact > 1e-9
    _, p = stats.chisquare(observed[keep], exact[keep] * observed.sum() / exact[keep].sum())
    assert p > 1e-3
    z_exact = float(exact[: 2 ** (n - 1)].sum() - exact[2 ** (n - 1):].sum())
    assert abs(float(e1) - z_exact) < 5 / np.sqrt(20000)


def test_torch_layer_trains():
    n, B = 4, 32
    dev = qml.device("qllm.torch", wires=n)

    @qml.qnode(dev, interface="torch")
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n))
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return [qml.expval(qml.Z(i)) for i in range(n)]

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        qml.qnn.TorchLayer(circuit, {"weights": (2, n, 3)}), torch.nn.Linear(n, 1))
    x = torch.rand(B, n) * np.pi
    y = torch.sin(x.sum(1, keepdim=True))
    losses = mse_losses(model, x, y, steps=30, lr=0.05)
    assert losses[-1] < 0.5 * losses[0]


def test_refuses_what_it_cannot_run():
    dev = qml.device("qllm.torch", wires=1)

    @qml.qnode(dev)
    def cv():
        qml.Displacement(0.1, 0.2, wires=0)
        return qml.expval(qml.Z(0))

    with pytest.raises(DeviceError, match="not supported with qllm.torch"):
        cv()
    with pytest.raises(BackendError, match="dtype must be one of float64, float32"):
        qml.device("qllm.torch", wires=1, dtype="float16")
    with pytest.raises(BackendError, match="strategy must be one of"):
        qml.device("qllm.torch", wires=1, strategy="fast")


def test_registered_as_a_pennylane_plugin():
    assert isinstance(qml.device("qllm.torch", wires=2), QllmTorchDevice)


@pytest.mark.slow
def test_pennylane_device_suite_exact():
    result = run_device_suite()
    counts = result["counts"]
    assert result["returncode"] == 0, result["output"][-4000:]
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0
    assert counts.get("passed", 0) >= 390, result["summary"]


@pytest.mark.slow
def test_pennylane_device_suite_with_shots():
    result = run_device_suite(shots=10000)
    counts = result["counts"]
    assert result["returncode"] == 0, result["output"][-4000:]
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0
    assert counts.get("passed", 0) >= 250, result["summary"]


def test_device_suite_refuses_bad_shots():
    with pytest.raises(BackendError, match="shots must be None or a positive int"):
        run_device_suite(shots=0)


def test_cli_device_test_refuses_bad_shots(capsys):
    from qllm.cli import main

    assert main(["device-test", "--shots", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shots must be None or a positive int" in err[0]
