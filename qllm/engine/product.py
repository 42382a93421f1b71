"""Product-state core: a hand-written forward + backward for the commonest small circuit shape.

Why: a quantum FFN circuit is usually an encoding on each qubit, weight layers, and Z readout.
The plan makes that a product-state prefix (one 2-vector per qubit and token), one fixed segment
(a 2^n x 2^n matrix M shared by every token) and a sign table S, so

    out = |kron(v_1 .. v_n) @ M|^2 @ S.

At small n autograd spends far longer on its ~100 small ops than on the arithmetic (5-10 us
per op on a CPU, forward and backward). ``ProductExpval`` does the batch part (Kronecker tree,
matrix product, probabilities, readout) in one autograd node whose backward is three matrix
products and the same tree walked back (two batched matrix-vector products per node). The
vectors and M come from ``DataVectors`` (shift.py) and ``FixedMatrix`` (fixed_matrix.py),
with hand-written backwards, where the circuit allows, else from plain autograd: a quantum FFN
call is about three autograd nodes instead of a few hundred. First-order gradients only (``first_order``);
the "fused" and "gates" strategies stay plain autograd for higher orders.
"""

from __future__ import annotations

import torch

from qllm.engine.encode import kron_vectors
from qllm.engine.fixed_matrix import core_cost_us, core_parts
from qllm.engine.fused import choose_fused, fused_cost_us, gates_cost_us
from qllm.engine.kron import kron_cost_us
from qllm.engine.pauli import pauli_cost_us
from qllm.engine.plan import Plan, decided
from qllm.engine.shift import first_order


def _kron_grads(vecs, i: int, j: int, memo: dict, grad: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``vecs[i:j]`` from the gradient of their Kronecker product: at each node
    ``psi = hi (x) lo`` two batched matrix-vector products (grad_hi = G conj(lo), ...)."""
    if j - i == 1:
        return [grad]
    mid = i + (j - i) // 2
    hi, lo = memo.get((i, mid), vecs[i]), memo.get((mid, j), vecs[mid])
    g = grad.view(grad.shape[0], hi.shape[1], lo.shape[1])
    grad_hi = (g @ lo.conj().unsqueeze(-1)).squeeze(-1)
    grad_lo = (hi.conj().unsqueeze(1) @ g).squeeze(1)
    return _kron_grads(vecs, i, mid, memo, grad_hi) + _kron_grads(vecs, mid, j, memo, grad_lo)


class ProductExpval(torch.autograd.Function):
    """``|kron(vecs) @ M|^2 @ signs``: vecs ``[B, n, 2]`` unit vectors, M ``[2^n, 2^n]`` or None
    (identity), signs ``[2^n, k]`` real (``[2^(n+1), k]``, rows doubled, when the state is
    complex: it reads the interleaved real view). With M ``[H, 2^n, 2^n]`` (H circuits of one
    spec) the tokens are H blocks of B / H, block h read through M[h]."""

    @staticmethod
    def forward(ctx, vecs, M, signs):
        tree = {}  # the Kronecker tree's inner nodes, for the backward
        psi = kron_vectors(list(vecs.unbind(1)), memo=tree)
        tree.pop((0, vecs.shape[1]), None)  # the root is psi
        B = psi.shape[0]
        if M is None:
            phi = psi
        elif M.is_complex() and not psi.is_complex():  # real x complex as one real product
            phi = (_blocks(psi, M) @ torch.view_as_real(M).flatten(-2)).reshape(B, -1)
        else:
            phi = (_blocks(psi, M) @ M).reshape(B, -1)
        view = torch.view_as_real(phi).flatten(1) if phi.is_complex() else phi  # [B, 2^n(x2)]
        # saved through save_for_backward only, so that torch.utils.checkpoint can free them
        ctx.keys = list(tree)
        ctx.save_for_backward(vecs, M, signs, psi, view, *tree.values())
        return (view * view) @ signs

    @staticmethod
    @first_order
    def backward(ctx, grad):
        vecs, M, signs, psi, view, *nodes = ctx.saved_tensors
        grad_view = (grad @ signs.T).mul_(view).mul_(2)  # d|a|^2/da = 2a, per real component
        grad_M = grad_vecs = None
        B = psi.shape[0]
        if M is None:
            grad_psi = grad_view if not psi.is_complex() else \
                torch.view_as_complex(grad_view.view(*psi.shape, 2))
        elif M.is_complex() and not psi.is_complex():
            m_real = torch.view_as_real(M).flatten(-2)  # [.., 2^n, 2^(n+1)]
            g = _blocks(grad_view, M)
            if ctx.needs_input_grad[1]:
                grad_M = torch.view_as_complex(
                    (_blocks(psi, M).transpose(-1, -2) @ g).view(*M.shape, 2))
            grad_psi = (g @ m_real.transpose(-1, -2)).reshape(B, -1)
        else:
            grad_phi = grad_view if not M.is_complex() else \
                torch.view_as_complex(grad_view.view(B, -1, 2))
            g = _blocks(grad_phi, M)
            if ctx.needs_input_grad[1]:
                grad_M = _blocks(psi, M).transpose(-1, -2).conj() @ g
            grad_psi = (g @ M.transpose(-1, -2).conj()).reshape(B, -1)
        if ctx.needs_input_grad[0]:
            tree = dict(zip(ctx.keys, nodes))
            grad_vecs = torch.stack(_kron_grads(list(vecs.unbind(1)), 0, vecs.shape[1], tree,
                                                grad_psi), 1)
        return grad_vecs, grad_M, None


def _blocks(t: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``[B, d]`` as ``[H, B / H, d]`` for H stacked matrices M ``[H, .., ..]`` (else as is)."""
    return t.view(M.shape[0], -1, t.shape[-1]) if M.dim() == 3 else t


def has_core_shape(plan: Plan) -> bool:
    """A product-state prefix, at most one segment (fixed) and diagonal observables only."""
    return (plan.prefix is not None and len(plan.segments) <= 1
            and all(seg.fixed for seg in plan.segments)
            and not any(set(o) - {"I", "Z"} for o in plan.observables))


def dense_cost_us(plan: Plan, batch: int) -> float:
    """Estimated forward + backward time of the dense core: ``FixedMatrix`` where it qualifies,
    else the autograd fused build, plus the batch products."""
    n, seg, stages = plan.n_qubits, plan.segments[0], core_parts(plan)[2]
    if stages is not None:
        return core_cost_us(stages, n, batch)
    return fused_cost_us(seg, n, batch)


def uses_kron_core(plan: Plan, batch: int) -> bool:
    """Whether the core runs the Kronecker path (kron.py) rather than the dense matrix M."""
    kron = kron_cost_us(plan, batch) if plan.segments else None
    return kron is not None and kron < dense_cost_us(plan, batch)


CORES = {"core": "dense", "kron": "kron", "pauli": "pauli"}  # strategy -> the core it forces


def uses_product_core(plan: Plan, batch: int, strategy: str) -> bool:
    """Whether ``simulate`` runs ``plan`` through a product-state core (see ``core_kind``):
    always under "core", "kron" and "pauli" (for circuits of their shape); under "auto" when
    the cheapest core is estimated cheaper than gate by gate."""
    if strategy not in ("auto", *CORES) or not has_core_shape(plan):
        return False
    if not plan.segments or strategy != "auto":
        return True
    return decided(plan, ("uses_core", batch), lambda: _core_pays(plan, batch))


def _core_pays(plan: Plan, batch: int) -> bool:
    n, seg = plan.n_qubits, plan.segments[0]
    gates = gates_cost_us(seg, n, batch)
    if any(c is not None and c < gates for c in (kron_cost_us(plan, batch),
                                                 pauli_cost_us(plan, batch))):
        return True
    if core_parts(plan)[2] is not None:
        return dense_cost_us(plan, batch) < gates
    return choose_fused(n, seg, batch, "auto")


def core_kind(plan: Plan, batch: int, strategy: str) -> str:
    """"dense", "kron" or "pauli": which product-state core runs a plan that takes one
    (strategies "core", "kron" and "pauli" force theirs; "auto" asks the cost models for the
    cheapest)."""
    if strategy in CORES:
        return CORES[strategy]
    if not plan.segments:
        return "dense"
    return decided(plan, ("core_kind", batch), lambda: _cheapest(plan, batch))


def _cheapest(plan: Plan, batch: int) -> str:
    costs = {"dense": dense_cost_us(plan, batch), "kron": kron_cost_us(plan, batch),
             "pauli": pauli_cost_us(plan, batch)}
    return min((c, k) for k, c in costs.items() if c is not None)[1]
