"""Run a compiled plan on a batch: product-state prefix, then fixed and data segments."""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import apply_micro, kron
from qllm.engine.encode import prefix_vectors, product_state, qubit_vectors
from qllm.engine.fused import choose_fused, segment_matrix
from qllm.engine.measure import expectations, sign_table
from qllm.engine.plan import Plan, make_plan
from qllm.engine.product import ProductExpval, has_core_shape, uses_product_core
from qllm.engine.shift import DataVectors, FixedMatrix, core_parts
from qllm.errors import BackendError
from qllm.gates import complex_dtype
from qllm.spec import CircuitSpec


def _context(plan: Plan, inputs: torch.Tensor, weights: torch.Tensor):
    real_dtype = inputs.dtype
    dtype = real_dtype if plan.real else complex_dtype(real_dtype)
    return AngleContext(plan.sources, inputs, weights.to(inputs.device, real_dtype)), dtype


def _run(plan: Plan, inputs: torch.Tensor, weights: torch.Tensor, strategy: str) -> torch.Tensor:
    ctx, dtype = _context(plan, inputs, weights)
    n = plan.n_qubits
    state = product_state(plan, ctx, dtype)
    for seg in plan.segments:
        if choose_fused(n, seg, ctx.B, strategy):
            state = state @ segment_matrix(seg, ctx, n, dtype, inputs.device)
        else:
            for micro in seg.micros:
                state = apply_micro(micro, state, ctx, n)
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
        strategy: "auto" (cost model), "fused" or "gates" (see fused.py), or "core". Circuits of
            the quantum-FFN shape (product-state prefix, one fixed segment, Z/I observables)
            can run through the product-state core (product.py, shift.py) with hand-written
            backwards, first derivatives only: "auto" takes it where the cost model says it
            pays, "core" always (and refuses other shapes). "fused" and "gates" are plain
            autograd to any order.
    """
    plan = make_plan(spec)
    if strategy == "core" and not has_core_shape(plan):
        raise BackendError(f"strategy 'core': {spec.name or 'this circuit'} is not of the "
                           "product-state core's shape (single-qubit gates first, at most one "
                           "segment without data, Z/I observables); use 'auto'")
    if uses_product_core(plan, inputs.shape[0], strategy):
        return _product_core(plan, inputs, weights)
    state = _run(plan, inputs, weights, strategy)
    return expectations(state, plan.observables, plan.sign_gather)


def simulate_stacked(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
                     strategy: str = "auto") -> torch.Tensor:
    """H circuits of one spec, each with its own weights: inputs ``[H, B, n_inputs]`` and
    weights ``[H, n_weights]`` -> ``[H, B, n_observables]``, as ``simulate`` per circuit. Where
    the product-state core takes the circuit with its shift-rule paths, all H run as one call
    (one weight matrix per circuit, every token in one batch): H small circuits then cost about
    one; otherwise they run one by one."""
    H, B = inputs.shape[:2]
    plan = make_plan(spec)
    head, shifts, stages = core_parts(plan) if has_core_shape(plan) else (None, None, None)
    if shifts is None or stages is None or not uses_product_core(plan, B, strategy):
        return torch.stack([simulate(spec, inputs[h], weights[h], strategy) for h in range(H)])
    flat = inputs.reshape(H * B, -1)
    ctx, dtype = _context(plan, flat, weights[0])  # the encoding reads no weights (shifts)
    shared = plan.sources.shared(weights.to(flat.device, flat.dtype))  # [H, S]
    M = FixedMatrix.apply(shared, stages, plan.n_qubits, dtype)  # [H, 2^n, 2^n]
    return _readout(plan, _encoded(plan, ctx, dtype, head, shifts), M).view(H, B, -1)


def _product_core(plan: Plan, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The same values by ``ProductExpval`` (product.py): one autograd node for the batch part,
    and one (``FixedMatrix``, shift.py) for the weight matrix where the segment qualifies."""
    ctx, dtype = _context(plan, inputs, weights)
    n = plan.n_qubits
    head, shifts, stages = core_parts(plan)
    if not plan.segments:  # nothing to fuse: the prefix alone, applied per token
        vecs, M = qubit_vectors(plan, ctx, dtype), None
    elif stages is not None:
        vecs = _encoded(plan, ctx, dtype, head, shifts)
        M = FixedMatrix.apply(ctx.shared, stages, n, dtype)
    else:
        vecs, pending = prefix_vectors(plan, ctx, dtype)
        M = segment_matrix(plan.segments[0], ctx, n, dtype, inputs.device)
        if pending is not None:  # the prefix's trailing weight-only steps, as M's first factor
            M = kron(list(pending.transpose(-1, -2).unbind(0))).to(M.dtype) @ M
    return _readout(plan, vecs, M)


def _encoded(plan: Plan, ctx: AngleContext, dtype, head, shifts) -> torch.Tensor:
    """The encoded qubit vectors ``[B, n, 2]``: through ``DataVectors`` (shift-rule backward)
    when input gradients are wanted, else directly (no shifted copies to compute)."""
    columns = ctx.data_columns() if shifts is not None else None
    if columns is not None and columns.requires_grad and torch.is_grad_enabled():
        return DataVectors.apply(columns, shifts, plan, head, dtype)
    return prefix_vectors(plan, ctx, dtype, head)[0]


def _readout(plan: Plan, vecs: torch.Tensor, M: torch.Tensor | None) -> torch.Tensor:
    """``ProductExpval``: Z/I expectation values ``[B, n_obs]`` of kron(vecs) @ M."""
    interleaved = vecs.is_complex() or (M is not None and M.is_complex())
    signs = sign_table(plan.observables, plan.sign_gather, vecs.device, vecs.real.dtype,
                       interleaved)
    return ProductExpval.apply(vecs, M, signs)
