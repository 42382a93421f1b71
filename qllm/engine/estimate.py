"""Peak-memory estimate of one forward (+ backward) of the native engine, computed without
allocating anything state-sized (so a 40-qubit request is refused in microseconds).

The model counts batch states ``S = batch * 2^n * itemsize`` alive at the peak, which with
autograd is the start of the backward pass (measured on CPU, complex64, n = 10..18; see
tests/test_memory_guard.py):
- 4.5 S for the product state, the probabilities of the measurement and the backward's buffers
  (2 S of them at the end of the forward, when the sign table is built);
- per micro-op that saves its input for the backward: 1 S per Kronecker block of a single-qubit
  layer (blocks of up to 4 qubits), 1 S per diagonal, 2 S per general multi-qubit matrix; a
  permutation saves only its index;
- a fused segment: 1 S, plus its 2^n x 2^n matrix built from the identity (one per micro-op);
- tables: the sign table of the observables (float64 while it is built), gather and phase
  tables of the plan. The peak is the larger of the end of the forward and the backward.
Without autograd about 3 S are alive at once. Past ``PLAN_FREE_QUBITS`` the plan is not built
(its index tables would be large themselves): a bound from the op count is used instead.
"""

from __future__ import annotations

import torch

from qllm.engine.fused import choose_fused
from qllm.engine.kron import kron_stages
from qllm.engine.pauli import pauli_program, quarters
from qllm.engine.plan import decided, make_plan
from qllm.engine.product import core_kind, uses_product_core
from qllm.spec import CircuitSpec

PLAN_FREE_QUBITS = 22


def estimate_bytes(spec: CircuitSpec, batch: int, real_dtype: torch.dtype = torch.float32,
                   strategy: str = "auto", grad: bool = True) -> int:
    """Bytes one ``simulate`` call on ``batch`` samples needs at its peak (with the backward
    when ``grad``)."""
    n = spec.n_qubits
    if n <= PLAN_FREE_QUBITS:  # every call asks (the memory guard): one memo lookup
        plan = make_plan(spec)
        return decided(plan, ("bytes", batch, real_dtype, strategy, grad),
                       lambda: _plan_bytes(plan, spec, batch, *_sizes(spec, batch, real_dtype),
                                           strategy, grad))
    real_bytes, itemsize, state = _sizes(spec, batch, real_dtype)
    # an upper bound: every op may keep a copy of the state
    return state * (5 + (2 * len(spec.ops) if grad else 0)) + 16 * 2**n * len(spec.ops)


def _sizes(spec: CircuitSpec, batch: int, real_dtype) -> tuple[int, int, int]:
    """(bytes of a real number, of an amplitude, of the batch's state)."""
    real_bytes = torch.finfo(real_dtype).bits // 8
    itemsize = real_bytes * (1 if spec.is_real else 2)
    return real_bytes, itemsize, itemsize * max(1, batch) * 2**spec.n_qubits


def _plan_bytes(plan, spec: CircuitSpec, batch: int, real_bytes: int, itemsize: int, state: int,
                strategy: str, grad: bool) -> int:
    n, dim = spec.n_qubits, 2**spec.n_qubits
    if plan.real and not spec.is_real:  # its dropped phases made the circuit real
        itemsize, state = real_bytes, real_bytes * max(1, batch) * dim
    if uses_product_core(plan, batch, strategy):
        kind = core_kind(plan, batch, strategy)
        if kind == "kron":
            return _kron_core_bytes(plan, batch, real_bytes, grad)
        if kind == "pauli":
            return _pauli_core_bytes(plan, batch, real_bytes, grad)
        return _product_core_bytes(plan, batch, state, real_bytes, grad)
    saved = matrix = tables = 0
    for seg in plan.segments:
        if choose_fused(n, seg, batch, strategy):
            saved += 1
            matrix = max(matrix, itemsize * dim * dim * (len(seg.micros) + 2 if grad else 2))
        elif grad:
            saved += sum(m.saved_states() for m in seg.micros)
        tables += sum(m.table_bytes(dim) for m in seg.micros)
    # The sign table of the observables is built (once per spec, at the end of the forward) from
    # float64 parities: 12 (real: float64 and its float32 copy) or 24 (complex: rows
    # interleaved) bytes per entry at its peak, then kept in the real dtype.
    entries = dim * spec.n_observables
    sign_build = entries * (12 if plan.real else 24)
    sign_kept = entries * real_bytes * (1 if plan.real else 2)
    if not grad:
        return state * 3 + matrix + tables + sign_build
    forward_end = state * (2 + saved) + sign_build  # product state, saved inputs, probabilities
    backward = state * (9 + 2 * saved) // 2 + sign_kept  # plus the backward's gradient buffers
    return max(forward_end, backward) + matrix + tables


def _product_core_bytes(plan, batch: int, state: int, real_bytes: int, grad: bool) -> int:
    """``ProductExpval`` (product.py): the product state, the state after M (a view of it when
    there is no M) and the probabilities; the backward adds gradients of the last two (in place
    of the probabilities). M and its saved layer matrices are 2^n x 2^n."""
    dim, n_obs = 2**plan.n_qubits, len(plan.observables)
    fused = bool(plan.segments)
    matrix = 2 * real_bytes * dim * dim * (2 * len(plan.segments[0].micros) + 3) if fused else 0
    states = (3 if fused else 2) + (1 if grad and fused else 0)
    # without M the per-qubit parts are not hidden in the states' slack: per token 12 reals a
    # qubit (angles, 2-vectors, gradients) and n 2^(n/2) / 2 for the Kronecker tree's nodes
    # (fitted to measured peaks of one-layer circuits, n = 4..12, tests/test_memory_guard.py:
    # at n = 4 the states alone were 38% of the peak)
    n = plan.n_qubits
    parts = 0 if fused else round(max(1, batch) * real_bytes * (12 * n + n * 2 ** (n / 2) / 2))
    return state * states + parts + matrix + dim * n_obs * (12 if plan.real else 24)


def _kron_core_bytes(plan, batch: int, real_bytes: int, grad: bool) -> int:
    """``KronExpval`` (kron.py): a complex state (the product state, and the state before each
    block, kept for the backward), its squares and, in the backward, two gradient states."""
    state = (1 if plan.real else 2) * real_bytes * max(1, batch) * 2**plan.n_qubits
    stages = (kron_stages(plan) or ([], None))[0]  # none: "kron" forced on another shape
    blocks = sum(len(a.blocks) for kind, a, _ in stages if kind == "layer")
    n_obs = len(plan.observables)
    return state * (3 + (blocks + 2 if grad else 0)) + 2**plan.n_qubits * n_obs * 12


def _pauli_core_bytes(plan, batch: int, real_bytes: int, grad: bool) -> int:
    """``pauli_expval`` (pauli.py): per token the Bloch vectors, the quarters' Kronecker tables,
    the a-half rows and, per row of C, its b-half, its product and their product; with the
    backward's gradients 3.2 times that (measured peaks, n = 8..12, tests/test_memory_guard.py:
    PauliReadout keeps its parts until its backward ends); the path tables and C. None of it
    grows as 2^n."""
    prog = pauli_program(plan)
    if prog is None:  # "pauli" forced on a circuit it declines: refused before it runs
        return 0
    n, (rows, UA) = plan.n_qubits, prog.shape
    per_token = 4 * n + sum(4**len(q) for q in quarters(n, prog.split)) + UA + 3 * rows
    paths = prog.n_paths * (prog.factors.shape[1] + 3) * 8 + rows * UA * real_bytes
    return round(max(1, batch) * per_token * real_bytes * (3.2 if grad else 1)) + paths
