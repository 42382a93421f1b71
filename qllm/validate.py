"""Checks shared by the public entry points: tensors that reach a backend are float, finite and of
the documented shape, or the call fails with an error that names the argument."""

from __future__ import annotations

import torch

from qllm.errors import InputError, InputTypeError


def check_angles(x, name: str, width: int) -> torch.Tensor:
    if not torch.is_tensor(x):
        raise InputTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputTypeError(f"{name} must be a float tensor (float32 or float64), got {x.dtype}")
    if x.dtype not in (torch.float32, torch.float64):
        raise InputTypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != width:
        raise InputError(f"{name} must have shape [..., {width}], got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name} contains NaN or inf; angles must be finite")
    return x
