"""Expectation values of Pauli strings on a batch of states ``[B, 2^n]``.

For a Pauli string P with X/Y mask x and Z/Y mask z:  P|k> = i^{#Y} (-1)^{popcount(k & z)} |k ^ x>.
Z-only strings reduce to probabilities times a +-1 sign matrix (one matrix product for all).
"""

from __future__ import annotations

from functools import lru_cache

import torch


def _masks(label: str) -> tuple[int, int, int]:
    n = len(label)
    x = z = 0
    for q, c in enumerate(label):
        bit = 1 << (n - 1 - q)
        if c in "XY":
            x |= bit
        if c in "ZY":
            z |= bit
    return x, z, label.count("Y")


@lru_cache(maxsize=256)
def _signs(n: int, z_masks: tuple[int, ...]) -> torch.Tensor:
    k = torch.arange(2**n)
    cols = []
    for z in z_masks:
        parity = torch.zeros_like(k)
        v = k & z
        while bool(v.any()):
            parity ^= v & 1
            v = v >> 1
        cols.append(1.0 - 2.0 * parity.double())
    return torch.stack(cols, -1)  # [2^n, n_obs]


def expectations(state: torch.Tensor, observables: tuple[str, ...]) -> torch.Tensor:
    n = len(observables[0])
    real_dtype = state.real.dtype if state.is_complex() else state.dtype
    masks = [_masks(o) for o in observables]
    probs = state.real**2 + state.imag**2 if state.is_complex() else state**2
    out: list[torch.Tensor | None] = [None] * len(observables)
    zonly = [i for i, (x, _, _) in enumerate(masks) if x == 0]
    if zonly:
        signs = _signs(n, tuple(masks[i][1] for i in zonly)).to(probs.device, real_dtype)
        vals = probs @ signs
        for j, i in enumerate(zonly):
            out[i] = vals[:, j]
    idx = torch.arange(2**n, device=state.device)
    for i, (x, z, ny) in enumerate(masks):
        if x == 0:
            continue
        sign = _signs(n, (z,))[:, 0].to(state.device, real_dtype)
        flipped = state[:, idx ^ x]
        phase = 1j**ny  # one of 1, i, -1, -i
        if state.is_complex():
            out[i] = ((flipped.conj() * state * sign).sum(-1) * phase).real
        else:  # real state: odd #Y gives exactly zero
            out[i] = (flipped * state * sign).sum(-1) * phase.real
    return torch.stack(out, -1)  # [B, n_obs]
