"""Qiskit primitives on qllm's engine: ``EstimatorQNN(..., estimator=qllm.qiskit.Estimator())``
and ``SamplerQNN(..., sampler=qllm.qiskit.Sampler())``.

See ``qllm.interop.qiskit_primitives`` and ``qllm.interop.qiskit_sampler``.
"""

from qllm.interop.qiskit_primitives import Estimator
from qllm.interop.qiskit_sampler import Sampler

__all__ = ["Estimator", "Sampler"]
