"""Shared checks of the engine's product-state cores against plain autograd ("gates") and
PennyLane default.qubit (tests/test_product_core.py, tests/test_kron_core.py)."""

from __future__ import annotations

import numpy as np
import torch

from qllm.engine import simulate, simulate_stacked
from tests.references import pennylane_expval


def draw(spec, batch: int, seed: int, lead=(), dtype=torch.float64):
    """Seeded inputs ``[*lead, batch, n_inputs]``, weights and output coefficients (angles in
    [-pi, pi))."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(*lead, batch, spec.n_inputs, generator=g, dtype=dtype) - 0.5) * 2 * np.pi
    wts = (torch.rand(*lead, spec.n_weights, generator=g, dtype=dtype) - 0.5) * 2 * np.pi
    coef = torch.randn(*lead, batch, spec.n_observables, generator=g, dtype=dtype)
    return x.requires_grad_(), wts.requires_grad_(), coef


def value_and_grads(fn, x, wts, coef):
    """``fn(x, wts)`` and the gradients of ``sum(fn * coef)`` for x and wts (zeros if unused)."""
    out = fn(x, wts)
    gx, gw = torch.autograd.grad((out * coef).sum(), (x, wts), allow_unused=True)
    return out, (torch.zeros_like(x) if gx is None else gx), \
        (torch.zeros_like(wts) if gw is None else gw)


def check_strategy(spec, strategy: str, x, wts, coef, pennylane: bool) -> None:
    """Values and gradients under ``strategy`` equal "gates" to 1e-10 (float64) and 2e-4
    (float32), and, with ``pennylane``, default.qubit to 1e-8 on the first three rows."""
    run = lambda a, b: simulate(spec, a, b, strategy)  # noqa: E731
    got = value_and_grads(run, x, wts, coef)
    ref = value_and_grads(lambda a, b: simulate(spec, a, b, "gates"), x, wts, coef)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    if pennylane:  # the independent reference (slow: a few rows)
        x3 = x[:3].detach().requires_grad_()
        got3 = value_and_grads(run, x3, wts, coef[:3])
        pl = value_and_grads(lambda a, b: pennylane_expval(spec, a, b), x3, wts, coef[:3])
        for a, b in zip(got3, pl):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-8)
    x32, w32 = x.detach().float().requires_grad_(), wts.detach().float().requires_grad_()
    got32 = value_and_grads(run, x32, w32, coef.float())
    for a, b in zip(got32, ref):
        np.testing.assert_allclose(a.detach().double().numpy(), b.detach().numpy(), atol=2e-4)


def check_stacked(spec, strategy: str, seed: int, batch: int, H: int = 3) -> None:
    """``simulate_stacked`` under ``strategy`` (H circuits, each its own weights) equals each
    circuit alone through "gates": values and gradients to 1e-10 (float64)."""
    x, wts, coef = draw(spec, batch, seed, lead=(H,))
    got = value_and_grads(lambda a, b: simulate_stacked(spec, a, b, strategy), x, wts, coef)
    ref = value_and_grads(lambda a, b: torch.stack([simulate(spec, a[h], b[h], "gates")
                                                    for h in range(H)]), x, wts, coef)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def check_checkpointed(spec, strategy: str, seed: int, batch: int = 16) -> None:
    """Gradients through ``torch.utils.checkpoint`` (which recomputes what the core saved)
    equal the direct call's to 1e-12."""
    from torch.utils.checkpoint import checkpoint

    x, wts, coef = draw(spec, batch, seed)
    direct = torch.autograd.grad((simulate(spec, x, wts, strategy) * coef).sum(), (x, wts))
    out = checkpoint(simulate, spec, x, wts, strategy, use_reentrant=False)
    again = torch.autograd.grad((out * coef).sum(), (x, wts))
    for a, b in zip(again, direct):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
