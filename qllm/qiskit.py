"""Qiskit primitives on qllm's engine: ``EstimatorQNN(..., estimator=qllm.qiskit.Estimator())``.

See ``qllm.interop.qiskit_primitives``.
"""

from qllm.interop.qiskit_primitives import Estimator

__all__ = ["Estimator"]
