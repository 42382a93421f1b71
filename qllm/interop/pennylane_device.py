"""``qml.device("qllm.torch", wires=n)``: qllm's batched engine behind PennyLane's device API.

A QNode's tapes are preprocessed by PennyLane's own transforms: mid-circuit measurements are
deferred, every operation outside qllm's gate table (``qllm.gates``) is decomposed until it is in
it (``decompose`` with a stopping condition), and what cannot be decomposed, or a measurement the
device cannot take, is refused with PennyLane's usual ``DeviceError``. Each tape, broadcast batch
included, then runs as one engine call (``pennylane_tape``, ``pennylane_measure``).

Gradients: ``diff_method="backprop"`` (and ``"best"``) with the torch interface differentiate
through the engine with autograd; other interfaces and finite shots get PennyLane's
parameter-shift.

>>> import pennylane as qml
>>> dev = qml.device("qllm.torch", wires=2)
>>> @qml.qnode(dev)
... def circuit(x):
...     qml.RX(x, wires=0)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.PauliZ(1))
>>> round(float(circuit(0.0)), 6)
1.0
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from pennylane import math
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.default_qubit import (
    accepted_analytic_measurement,
    accepted_sample_measurement,
)
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    no_sampling,
    validate_device_wires,
    validate_measurements,
)
from pennylane.exceptions import DeviceError
from pennylane.transforms import defer_measurements
from pennylane.transforms.core import CompilePipeline

from qllm.errors import BackendError
from qllm.interop.pennylane_measure import measure_tape
from qllm.interop.pennylane_tape import SUPPORTED_OPS, tape_program

_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_STRATEGIES = ("auto", "fused", "gates")
# Interfaces whose parameters autograd can follow through the engine (numpy: nothing to follow).
_BACKPROP_INTERFACES = {math.Interface.TORCH, math.Interface.NUMPY}


def stopping_condition(op) -> bool:
    """True for operations the engine runs as they are (the rest are decomposed)."""
    return op.name in SUPPORTED_OPS


def decomposer(op):
    """PennyLane's decomposition; an operation with a matrix but no decomposition
    (DoubleExcitationPlus, BlockEncode, ...) becomes ``QubitUnitary`` of its matrix, which
    PennyLane decomposes (QSD) into the table."""
    if not op.has_decomposition and op.has_matrix:
        from pennylane import QubitUnitary

        return [QubitUnitary(op.matrix(), wires=op.wires)]
    return op.decomposition()


@simulator_tracking
@single_tape_support
class QllmTorchDevice(Device):
    """PennyLane device on qllm's batched PyTorch statevector engine.

    Args:
        wires: number of wires or their labels (None: the circuit's wires).
        shots: default shots (None: analytic); a QNode's own ``shots`` take precedence.
        seed: seed of the numpy generator used to sample shots (None: fresh entropy).
        dtype: ``"float64"`` (complex128 states, default) or ``"float32"`` (complex64).
        strategy: the engine's strategy, ``"auto"`` (default), ``"fused"`` or ``"gates"``.

    Raises:
        BackendError: unknown ``dtype`` or ``strategy``.
    """

    name = "qllm.torch"
    short_name = "qllm.torch"
    pennylane_requires = ">=0.45"
    author = "qllm"

    def __init__(self, wires=None, shots=None, seed=None, dtype: str = "float64",
                 strategy: str = "auto"):
        super().__init__(wires=wires, shots=shots)
        if dtype not in _DTYPES:
            raise BackendError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if strategy not in _STRATEGIES:
            raise BackendError(f"strategy must be one of {', '.join(_STRATEGIES)}, "
                               f"got {strategy!r}")
        self._dtype = _DTYPES[dtype]
        self._strategy = strategy
        self._rng = np.random.default_rng(seed)

    # -- configuration ---------------------------------------------------------------------
    def supports_derivatives(self, execution_config=None, circuit=None) -> bool:
        """Backprop (autograd through the engine) for analytic torch executions."""
        if execution_config is None:
            return True
        if execution_config.gradient_method not in {"backprop", "best"}:
            return False
        if execution_config.interface not in _BACKPROP_INTERFACES:
            return False
        return circuit is None or not circuit.shots

    def setup_execution_config(self, config: ExecutionConfig | None = None,
                               circuit=None) -> ExecutionConfig:
        config = config or ExecutionConfig()
        updated = {"convert_to_numpy": True}
        if config.gradient_method == "best":
            updated["gradient_method"] = "backprop"
        method = updated.get("gradient_method", config.gradient_method)
        if config.use_device_gradient is None:
            updated["use_device_gradient"] = method == "backprop"
        if config.use_device_jacobian_product is None:
            updated["use_device_jacobian_product"] = False
        if config.grad_on_execution is None:
            updated["grad_on_execution"] = False
        mcm = config.mcm_config
        if mcm.mcm_method not in (None, "deferred"):
            raise DeviceError(f"mcm_method {mcm.mcm_method!r} is not supported on qllm.torch; "
                              "supported: 'deferred'")
        updated["mcm_config"] = replace(mcm, mcm_method="deferred")
        return replace(config, **updated)

    def preprocess_transforms(self, execution_config: ExecutionConfig | None = None):
        config = execution_config or ExecutionConfig()
        program = CompilePipeline()
        program.add_transform(defer_measurements, allow_postselect=False)
        program.add_transform(decompose, stopping_condition=stopping_condition,
                              device_wires=self.wires, target_gates=SUPPORTED_OPS,
                              name=self.name, skip_initial_state_prep=False,
                              decomposer=decomposer)
        program.add_transform(validate_device_wires, self.wires, name=self.name)
        program.add_transform(validate_measurements,
                              analytic_measurements=accepted_analytic_measurement,
                              sample_measurements=accepted_sample_measurement, name=self.name)
        if config.gradient_method == "backprop":
            program.add_transform(no_sampling, name="backprop + qllm.torch")
        return program

    # -- execution -------------------------------------------------------------------------
    def execute(self, circuits, execution_config: ExecutionConfig | None = None):
        """Results of each tape; torch tensors where the tape holds torch parameters."""
        config = execution_config or ExecutionConfig()
        # The product-state core differentiates once; higher orders take plain autograd.
        strategy = self._strategy
        if config.derivative_order > 1 and strategy == "auto":
            strategy = "fused"
        return tuple(self._execute_one(c, strategy) for c in circuits)

    def _execute_one(self, circuit, strategy: str):
        tape = circuit.map_to_standard_wires()
        as_torch = any(torch.is_tensor(p) for p in tape.get_parameters(trainable_only=False))
        program = tape_program(tape, self._dtype)
        return measure_tape(tape, program, self._rng, as_torch, strategy)
