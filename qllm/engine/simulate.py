"""Run a compiled plan on a batch: product-state prefix, then fixed and data segments."""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import apply_micro
from qllm.engine.encode import product_state
from qllm.engine.fused import choose_fused, segment_matrix
from qllm.engine.measure import expectations
from qllm.engine.plan import Plan, make_plan
from qllm.gates import complex_dtype
from qllm.spec import CircuitSpec


def _run(plan: Plan, inputs: torch.Tensor, weights: torch.Tensor, strategy: str) -> torch.Tensor:
    real_dtype = inputs.dtype
    dtype = real_dtype if plan.real else complex_dtype(real_dtype)
    ctx = AngleContext(plan.sources, inputs, weights.to(inputs.device, real_dtype))
    n = plan.n_qubits
    state = product_state(plan, ctx, dtype)
    for seg in plan.segments:
        if choose_fused(n, seg, ctx.B, strategy):
            state = state @ segment_matrix(seg, ctx, n, dtype, inputs.device)
        else:
            for micro in seg.micros:
                state = apply_micro(state, micro, ctx, n)
    return state


def simulate_state(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
                   strategy: str = "auto") -> torch.Tensor:
    """Final statevectors ``[B, 2^n]`` for inputs ``[B, n_inputs]`` and shared weights
    ``[n_weights]``; complex unless the circuit is real. Trailing gates that cannot change
    diagonal observables are still applied here (only ``simulate`` skips them)."""
    plan = make_plan(spec.with_observables(["X" * spec.n_qubits]))
    return _run(plan, inputs, weights, strategy)


def simulate(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
             strategy: str = "auto") -> torch.Tensor:
    """Expectation values ``[B, n_observables]`` in the real dtype of ``inputs``.

    Args:
        spec: the circuit.
        inputs: ``[B, n_inputs]`` float32 (complex64 simulation) or float64 (complex128).
        weights: ``[n_weights]``, cast to the dtype of ``inputs``.
        strategy: "auto" (cost model), "fused" or "gates" (see fused.py).
    """
    plan = make_plan(spec)
    state = _run(plan, inputs, weights, strategy)
    return expectations(state, plan.observables, plan.sign_gather)
