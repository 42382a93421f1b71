"""Peak-memory estimate of one forward + backward of the native engine, computed without
allocating anything (so a 40-qubit request is refused in microseconds)."""

from __future__ import annotations

import torch

from qllm.engine.fused import choose_fused
from qllm.engine.plan import make_plan
from qllm.spec import CircuitSpec


def estimate_bytes(spec: CircuitSpec, batch: int, real_dtype: torch.dtype = torch.float32,
                   strategy: str = "auto", grad: bool = True) -> int:
    n = spec.n_qubits
    itemsize = torch.finfo(real_dtype).bits // 8 * (1 if spec.is_real else 2)
    if n > 34:  # don't even build a plan: index tables alone would not fit
        return itemsize * batch * 2**n * 4
    plan = make_plan(spec)
    dim = 2**n
    states = 3  # input, output and one temporary of the batch state
    mats = 0
    for seg in plan.segments:
        if seg.fixed and choose_fused(n, seg, batch, strategy):
            states += 1
            mats = max(mats, 3 + (len(seg.micros) if grad else 0))
        else:
            states += 2 * len(seg.micros) if grad else 1
    states += n if grad else 0  # product-state prefix and measurement intermediates
    return itemsize * (batch * dim * states + dim * dim * mats) + 8 * dim * 4
