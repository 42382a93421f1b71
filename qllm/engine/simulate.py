"""Run a compiled plan on a batch: product-state prefix, then fixed and data segments."""

from __future__ import annotations

import torch

from qllm.engine.angles import AngleContext
from qllm.engine.apply import apply_micro, kron
from qllm.engine.encode import prefix_vectors, product_state, qubit_vectors
from qllm.engine.fixed_matrix import FixedMatrix, core_parts
from qllm.engine.fused import choose_fused, segment_matrix
from qllm.engine.kron import StackedAngles, kron_expval, kron_stages
from qllm.engine.measure import expectations, sign_table
from qllm.engine.pauli import pauli_expval, pauli_program
from qllm.engine.plan import Plan, make_plan
from qllm.engine.product import ProductExpval, core_kind, has_core_shape, uses_product_core
from qllm.engine.shift import DataVectors
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
        strategy: "auto" (cost model), "fused" or "gates" (see fused.py), "core", "kron" or
            "pauli". Circuits of the quantum-FFN shape (product-state prefix, one fixed
            segment, Z/I observables) can run through a product-state core: the dense one (one
            2^n x 2^n weight matrix, product.py, fixed_matrix.py) or the Kronecker one (the segment
            block by block, kron.py), both with hand-written backwards, first derivatives
            only; or the Heisenberg one (the observables as Pauli sums read on product states,
            pauli.py). "auto" takes the cheapest where the cost models say it pays; "core",
            "kron" and "pauli" force theirs (and refuse other shapes). "fused" and "gates" are
            plain autograd to any order.
    """
    plan = make_plan(spec)
    _check_core_shape(plan, spec, strategy)
    if uses_product_core(plan, inputs.shape[0], strategy):
        return _keep_graph(_product_core(plan, inputs, weights, strategy), inputs, weights)
    state = _run(plan, inputs, weights, strategy)
    return _keep_graph(expectations(state, plan.observables, plan.sign_gather), inputs, weights)


def _keep_graph(out: torch.Tensor, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``out`` joined to the autograd graph of inputs and weights that need gradients, though
    it may not depend on them (every gate that read them dropped as unseen: zero gradients,
    as PennyLane gives, rather than an error from backward)."""
    needs = [t for t in (inputs, weights) if t.requires_grad]
    if out.requires_grad or not needs or not torch.is_grad_enabled():
        return out
    return out + sum(t.reshape(-1)[:0].sum() for t in needs)  # empty sums: 0, with a grad_fn


def _check_core_shape(plan: Plan, spec: CircuitSpec, strategy: str) -> None:
    """Strategies "core", "kron" and "pauli" refuse circuits their core cannot run."""
    name = spec.name or "this circuit"
    if strategy in ("core", "kron", "pauli") and not has_core_shape(plan):
        raise BackendError(f"strategy {strategy!r}: {name} is not of the product-state core's "
                           "shape (single-qubit gates first, at most one segment without data, "
                           "Z/I observables); use 'auto'")
    if strategy == "kron" and plan.segments and kron_stages(plan) is None:
        raise BackendError(f"strategy 'kron': {name}'s fixed part is not only permutations and "
                           "single-qubit layers (the Kronecker core's shape); use 'auto' or "
                           "'core'")
    if strategy == "pauli" and plan.segments and pauli_program(plan) is None:
        raise BackendError(f"strategy 'pauli': {name}'s fixed part has a gate that is neither a "
                           "Pauli rotation nor Clifford, or its observables grow past "
                           "MAX_PATHS Pauli paths (too deep); use 'auto' or 'kron'")


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
    _check_core_shape(plan, spec, strategy)
    core = shifts is not None and uses_product_core(plan, B, strategy)
    kind = core_kind(plan, H * B, strategy) if core and plan.segments else "dense"
    if not core or (kind == "dense" and stages is None):
        return torch.stack([simulate(spec, inputs[h], weights[h], strategy) for h in range(H)])
    flat = inputs.reshape(H * B, -1)
    ctx, dtype = _context(plan, flat, weights[0])  # the encoding reads no weights (shifts)
    shared = plan.sources.shared(weights.to(flat.device, flat.dtype))  # [H, S]
    if kind == "pauli":  # the encoding in Bloch form, plain autograd: any derivative order
        return _keep_graph(pauli_expval(plan, StackedAngles(shared), ctx, dtype, H), inputs,
                           weights)
    vecs = _encoded(plan, ctx, dtype, head, shifts)
    if kind == "kron":
        return _keep_graph(kron_expval(plan, StackedAngles(shared), vecs, dtype, H), inputs,
                           weights)
    M = FixedMatrix.apply(shared, stages, plan.n_qubits, dtype)  # [H, 2^n, 2^n]
    return _keep_graph(_readout(plan, vecs, M).view(H, B, -1), inputs, weights)


def _product_core(plan: Plan, inputs: torch.Tensor, weights: torch.Tensor,
                  strategy: str) -> torch.Tensor:
    """The same values by ``KronExpval`` (kron.py) or ``ProductExpval`` (product.py): one
    autograd node for the batch part, and for the dense one's weight matrix one more
    (``FixedMatrix``, fixed_matrix.py) where the segment qualifies."""
    ctx, dtype = _context(plan, inputs, weights)
    n = plan.n_qubits
    head, shifts, stages = core_parts(plan)
    if not plan.segments:  # nothing to fuse: the prefix alone, applied per token
        vecs, M = qubit_vectors(plan, ctx, dtype), None
    elif (kind := core_kind(plan, inputs.shape[0], strategy)) == "pauli":
        return pauli_expval(plan, ctx, ctx, dtype)[0]  # its encoding in Bloch form: any order
    elif kind == "kron":  # no dense M
        return kron_expval(plan, ctx, _encoded(plan, ctx, dtype, head, shifts), dtype)[0]
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
    when input gradients are wanted and ``shifts`` given, else by plain autograd."""
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
