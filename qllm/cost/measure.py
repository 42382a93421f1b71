"""Measured simulator cost of one training step: wall time and peak memory."""

from __future__ import annotations

import time

import torch


def measure_step(model, example_input, repeats: int = 3) -> dict:
    """Median wall time of forward + backward on ``example_input`` over ``repeats`` runs, and peak
    memory: measured on CUDA (``torch.cuda.max_memory_allocated``); on CPU, where torch keeps no
    peak, the native engine's estimate for the largest quantum layer.

    Returns:
        {"wall_seconds_fwd_bwd", "repeats", "tokens", "device", "peak_bytes",
        "peak_bytes_kind"}.
    """
    from qllm.cost.ledger import find_quantum_layers

    x = example_input
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        out = model(*x) if isinstance(x, tuple) else model(x)
        out = out[0] if isinstance(out, tuple) else out
        out.float().sum().backward()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    first = x[0] if isinstance(x, tuple) else x
    tokens = int(first.shape[0] * first.shape[1])
    res = {"wall_seconds_fwd_bwd": sorted(times)[len(times) // 2], "repeats": repeats,
           "tokens": tokens, "device": str(device)}
    if cuda:
        res["peak_bytes"] = int(torch.cuda.max_memory_allocated(device))
        res["peak_bytes_kind"] = "measured (torch.cuda.max_memory_allocated)"
        return res
    est = 0
    for _, layer in find_quantum_layers(model):
        if hasattr(layer.backend, "estimate_bytes"):
            est = max(est, int(layer.backend.estimate_bytes(layer.spec, tokens)))
    res["peak_bytes"] = est
    res["peak_bytes_kind"] = ("estimated for the largest quantum layer (torch keeps no CPU peak)"
                              if est else "not available on CPU")
    return res
