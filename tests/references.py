"""Trusted references for parity tests: PennyLane default.qubit and qiskit.quantum_info."""

from __future__ import annotations

import numpy as np
import torch

from qllm.spec import CircuitSpec


def pennylane_expval(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
                     diff_method: str = "backprop") -> torch.Tensor:
    """Expectation values ``[B, n_obs]`` from PennyLane default.qubit (torch interface, per sample
    loop so that gates without inputs need no broadcasting special case)."""
    import pennylane as qml

    dev = qml.device("default.qubit", wires=spec.n_qubits)
    qnode = qml.QNode(spec.to_pennylane(), dev, interface="torch", diff_method=diff_method)
    rows = []
    for x in inputs:
        res = qnode(x, weights)
        rows.append(torch.stack([torch.as_tensor(r).reshape(()) for r in res]))
    return torch.stack(rows)


def qiskit_expval(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """Expectation values ``[B, n_obs]`` from ``qiskit.quantum_info.Statevector`` with the
    parameters of ``spec.to_qiskit()`` bound per sample."""
    from qiskit.quantum_info import Statevector

    qc = spec.to_qiskit()
    obs = spec.qiskit_observables()
    x_params = [p for p in qc.parameters if p.name.startswith("x[")]
    t_params = [p for p in qc.parameters if p.name.startswith("θ[")]
    w = weights.detach().double().numpy()
    out = []
    for x in inputs.detach().double().numpy():
        binding = {p: float(x[p.index]) for p in x_params}
        binding.update({p: float(w[p.index]) for p in t_params})
        sv = Statevector(qc.assign_parameters(binding))
        out.append([float(np.real(sv.expectation_value(o))) for o in obs])
    return np.array(out)


def assert_shot_means_unbiased(backend, shots: int, cases) -> None:
    """For ``(spec, inputs, weights)`` cases: each shot estimate lies within 5 sigma of the exact
    value, the grand mean of the errors within 5 sigma of zero, and the estimates really sample."""
    from qllm.engine import simulate

    diffs, variances = [], []
    for i, (spec, x, wt) in enumerate(cases):
        exact = simulate(spec, x, wt)
        est = backend.expval(spec, x, wt)
        var = (1 - exact**2).clamp_min(1.0 / shots) / shots  # variance of a +-1 mean
        z = (est - exact) / var.sqrt()
        assert z.abs().max() < 5, f"case {i}: z = {z}"
        diffs.append((est - exact).flatten())
        variances.append(var.flatten())
    d, v = torch.cat(diffs), torch.cat(variances)
    assert abs(d.mean()) < 5 * v.sum().sqrt() / len(d)  # the grand mean is unbiased
    assert d.abs().max() > 0  # shots really sample
