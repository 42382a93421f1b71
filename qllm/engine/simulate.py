"""Run a compiled plan on a batch: product-state prefix, then fixed and data segments."""

from __future__ import annotations

import torch

from qllm.engine.apply import apply_micro
from qllm.engine.encode import product_state
from qllm.engine.fused import choose_fused, segment_matrix
from qllm.engine.measure import expectations
from qllm.engine.plan import make_plan
from qllm.gates import complex_dtype
from qllm.spec import CircuitSpec


def simulate_state(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
                   strategy: str = "auto") -> torch.Tensor:
    """Final statevectors ``[B, 2^n]`` for inputs ``[B, n_inputs]`` and shared weights."""
    plan = make_plan(spec)
    real_dtype = inputs.dtype
    dtype = real_dtype if plan.real else complex_dtype(real_dtype)
    state = product_state(spec, plan, inputs, weights, dtype)
    for seg in plan.segments:
        if seg.fixed and choose_fused(spec.n_qubits, seg, inputs.shape[0], strategy):
            state = state @ segment_matrix(spec, seg, inputs, weights, dtype, inputs.device)
        else:
            for micro in seg.micros:
                state = apply_micro(spec, micro, state, inputs, weights)
    return state


def simulate(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
             strategy: str = "auto") -> torch.Tensor:
    """Expectation values ``[B, n_observables]`` in the real dtype of ``inputs``."""
    return expectations(simulate_state(spec, inputs, weights, strategy), spec.observables)
