"""Checks shared by the public entry points: tensors that reach a backend are float, finite and of
the documented shape, or the call fails with an error that names the argument."""

from __future__ import annotations

import math

import torch

from qllm.errors import InputError, InputTypeError


def is_int(value) -> bool:
    """An int that is not a bool (Python counts True as 1; no count, size or seed here is)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value) -> bool:
    """An int or a float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_angles(x, name: str, width: int) -> torch.Tensor:
    if not torch.is_tensor(x):
        raise InputTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputTypeError(f"{name} must be a float tensor (float32 or float64), got {x.dtype}")
    if x.dtype not in (torch.float32, torch.float64):
        raise InputTypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != width:
        raise InputError(f"{name} must have shape [..., {width}], got {tuple(x.shape)}")
    if not all_finite(x):
        raise InputError(f"{name} contains NaN or inf; angles must be finite")
    return x


def all_finite(t: torch.Tensor) -> bool:
    """No NaN or inf in ``t``, with one reduction in the common case: a finite sum means every
    element is finite (NaN and inf propagate); only an overflowing sum needs the full check."""
    return t.numel() == 0 or math.isfinite(t.sum().item()) or bool(torch.isfinite(t).all())
