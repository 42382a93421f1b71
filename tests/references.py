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
