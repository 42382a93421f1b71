"""Computational-basis counts of the ``aer`` backend (split out of aer_backend.py)."""

from __future__ import annotations

import numpy as np
import torch

from qllm.errors import BackendError
from qllm.spec import CircuitSpec


def counts(backend, spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor) -> list[dict]:
    """``AerBackend.counts``: ``[{bitstring: count}]`` per sample, spec qubit 0 first."""
    from qllm.validate import check_angles

    if backend.shots is None:
        raise BackendError("counts need shots; build the backend with shots=N")
    check_angles(inputs, "inputs", spec.n_inputs)
    check_angles(weights, "weights", spec.n_weights)
    z_spec = spec.with_observables(["Z" * spec.n_qubits])
    values = backend._values(inputs, weights)
    n = spec.n_qubits
    backend.stats.add(values.shape[0], shots=values.shape[0] * backend.shots, jobs=1)
    if backend.sampling == "sampler":
        ((_, _, bits),) = backend._bits(z_spec, values)
        result = []
        for sample in bits:
            keys, c = np.unique(sample, axis=0, return_counts=True)
            result.append({"".join(str(int(b)) for b in key): int(v) for key, v in zip(keys, c)})
        return result
    ((_, _, probs),) = backend._probabilities(z_spec, values)
    labels = ["".join(str((k >> q) & 1) for q in range(n)) for k in range(2**n)]
    return [{labels[k]: int(v) for k, v in enumerate(row) if v} for row in backend._draw(probs)]
