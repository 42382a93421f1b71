"""qllm: hybrid quantum-classical transformers with fast batched circuit simulation, Aer and
hardware backends, and resource cost next to accuracy."""

from qllm.backends import get_backend, register_backend
from qllm.errors import QllmError
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, Param, const, inp, w

__version__ = "0.1.0"

__all__ = ["CircuitSpec", "Op", "Param", "inp", "w", "const", "QuantumLayer", "get_backend",
           "register_backend", "QllmError", "__version__"]
