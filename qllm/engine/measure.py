"""Expectation values of Pauli strings on a batch of states ``[B, 2^n]``.

For a Pauli string P with X/Y mask x and Z/Y mask z:  P|k> = i^{#Y} (-1)^{popcount(k & z)} |k ^ x>.
Diagonal (Z/I-only) strings reduce to probabilities times a +-1 sign table: one matrix product
for all of them. A trailing permutation the plan folded away permutes the rows of that table.
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


def _parity_signs(n: int, z_masks: tuple[int, ...]) -> torch.Tensor:
    """``[2^n, n_obs]`` float64 +-1, filled column by column (no list of columns to stack: at
    20 qubits the table is the largest allocation of a call)."""
    k = torch.arange(2**n)
    out = torch.empty(2**n, len(z_masks), dtype=torch.float64)
    for j, z in enumerate(z_masks):
        parity = torch.zeros_like(k)
        v = k & z
        while bool(v.any()):
            parity ^= v & 1
            v = v >> 1
        out[:, j] = 1.0 - 2.0 * parity.double()
    return out


class _GatherKey:
    """Hashes a plan's sign gather by identity (plans are cached, so the tensor lives on)."""

    def __init__(self, t: torch.Tensor):
        self.t = t

    def __hash__(self):
        return id(self.t)

    def __eq__(self, other):
        return isinstance(other, _GatherKey) and other.t is self.t


@lru_cache(maxsize=256)
def _signs(n: int, z_masks: tuple[int, ...], gather_key, device, dtype,
           interleaved: bool = False) -> torch.Tensor:
    """Sign table ``[2^n, n_obs]`` (``[2^(n+1), n_obs]`` with each row twice, for the
    interleaved real view of a complex state)."""
    s = _parity_signs(n, z_masks)
    if gather_key is not None:
        s = s[gather_key.t]
    if interleaved:
        s = s.repeat_interleave(2, 0)
    return s.to(device, dtype)


def sign_table(observables: tuple[str, ...], sign_gather, device, dtype,
               interleaved: bool = False) -> torch.Tensor:
    """``[2^n, n_obs]`` +-1 table of Z/I-only observables (rows doubled when ``interleaved``)."""
    key = None if sign_gather is None else _GatherKey(sign_gather)
    return _signs(len(observables[0]), tuple(_masks(o)[1] for o in observables), key, device,
                  dtype, interleaved)


def expectations(state: torch.Tensor, observables: tuple[str, ...],
                 sign_gather: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, n_obs]`` expectation values, real dtype of ``state``.

    ``sign_gather``: the state is the true final state with a permutation not applied (only
    allowed when every observable is diagonal); row j of the sign table becomes row gather[j].
    """
    n = len(observables[0])
    real_dtype = state.real.dtype if state.is_complex() else state.dtype
    masks = [_masks(o) for o in observables]
    out: list[torch.Tensor | None] = [None] * len(observables)
    zonly = [i for i, (x, _, _) in enumerate(masks) if x == 0]
    if zonly:
        signs = sign_table(tuple(observables[i] for i in zonly), sign_gather, state.device,
                           real_dtype, state.is_complex())
        if state.is_complex():  # |a + ib|^2 = a^2 + b^2: square the interleaved real view
            v = torch.view_as_real(state).reshape(state.shape[0], -1)
            probs = v * v  # (a product: the backward of square() is slower)
        else:
            probs = state * state
        vals = probs @ signs
        if len(zonly) == len(observables):
            return vals
        for j, i in enumerate(zonly):
            out[i] = vals[:, j]
    assert sign_gather is None, "a folded permutation needs diagonal observables"
    idx = torch.arange(2**n, device=state.device)
    for i, (x, z, ny) in enumerate(masks):
        if x == 0:
            continue
        sign = _signs(n, (z,), None, state.device, real_dtype)[:, 0]
        flipped = state[:, idx ^ x]
        phase = 1j**ny  # one of 1, i, -1, -i
        if state.is_complex():
            out[i] = ((flipped.conj() * state * sign).sum(-1) * phase).real
        else:  # real state: odd #Y gives exactly zero
            out[i] = (flipped * state * sign).sum(-1) * phase.real
    return torch.stack(out, -1)  # [B, n_obs]
