"""Qiskit's ``BaseSamplerV2`` on qllm's engine: ``qllm.qiskit.Sampler()``.

Each PUB's parameter sets run as one batch of final states (``simulate_state``); shots are drawn
from their probabilities with a seeded numpy generator and packed per classical register into
``BitArray`` s, as ``StatevectorSampler`` returns them. Measurements must be final (a measurement
followed by a gate on its qubit is refused, as are resets and classical control).
"""

from __future__ import annotations

import numpy as np
import torch
from qiskit.primitives import BaseSamplerV2, DataBin, PrimitiveJob, PrimitiveResult
from qiskit.primitives.containers import BitArray, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub

from qllm.engine import simulate_state
from qllm.errors import BackendError
from qllm.interop.qiskit_circuits import circuit_program
from qllm.validate import is_int


def _sample(probs: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Outcome indices ``[N, shots]`` drawn from probabilities ``[N, 2^n]``."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((len(probs), shots))
    return np.stack([np.searchsorted(c, row, side="right") for c, row in zip(cdf, u)])


class Sampler(BaseSamplerV2):
    """Shots from exact final states on qllm's batched engine (complex128).

    Args:
        default_shots: shots of a PUB that names none (1024, as StatevectorSampler).
        seed: seed of the shot sampling (None: fresh entropy).

    Raises:
        BackendError: ``default_shots`` is not a positive int.
    """

    def __init__(self, *, default_shots: int = 1024, seed=None):
        if not is_int(default_shots) \
                or default_shots < 1:
            raise BackendError(f"default_shots must be a positive int, got {default_shots!r}")
        self._default_shots = default_shots
        self._seed = seed

    @property
    def default_shots(self) -> int:
        return self._default_shots

    def run(self, pubs, *, shots: int | None = None) -> PrimitiveJob:
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        job = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[SamplerPub]) -> PrimitiveResult:
        rng = np.random.default_rng(self._seed)
        return PrimitiveResult([self._run_pub(pub, rng) for pub in pubs], metadata={"version": 2})

    def _run_pub(self, pub: SamplerPub, rng: np.random.Generator) -> SamplerPubResult:
        qc = pub.circuit
        measured = {}  # clbit -> qubit
        for inst in qc.data:
            if inst.operation.name == "measure":
                measured[inst.clbits[0]] = qc.find_bit(inst.qubits[0]).index
        program = circuit_program(qc)  # refuses measurements that are not final
        n = program.spec.n_qubits
        values = pub.parameter_values
        N = int(np.prod(values.shape, dtype=int))
        flat = values.as_array(program.parameters).reshape(N, len(program.parameters))
        with torch.no_grad():
            state = simulate_state(program.spec, program.inputs(flat.astype(np.float64)),
                                   torch.zeros(0, dtype=torch.float64))
        probs = (state.abs() ** 2).numpy() if state.is_complex() else (state**2).numpy()
        outcomes = _sample(probs, pub.shots, rng)  # qllm index: qubit 0 is the top bit
        data = {}
        for creg in qc.cregs:
            bits = np.zeros((N, pub.shots, creg.size), dtype=bool)
            for j, clbit in enumerate(creg):
                if clbit in measured:
                    bits[..., j] = (outcomes >> (n - 1 - measured[clbit])) & 1
            bits = bits.reshape(*values.shape, pub.shots, creg.size)
            data[creg.name] = BitArray.from_bool_array(bits, order="little")
        return SamplerPubResult(DataBin(**data, shape=pub.shape),
                                metadata={"shots": pub.shots,
                                          "circuit_metadata": qc.metadata})
