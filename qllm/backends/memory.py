"""Memory estimates and the budget check every backend runs before allocating.

The budget defaults to half of the free memory (RAM, or GPU memory for CUDA tensors); set
``QLLM_MEMORY_BUDGET_GB`` or pass ``budget_bytes`` to change it.
"""

from __future__ import annotations

import os
import time

import torch

from qllm.errors import MemoryBudgetError


def available_bytes(device: torch.device | str = "cpu") -> int:
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil  # portable (Linux, macOS, Windows); reads what Linux calls MemAvailable

    return int(psutil.virtual_memory().available)


_FREE_CACHE: dict = {}  # device -> (time, bytes): free memory is read at most once a second


def _cached_available(device) -> int:
    key, now = str(torch.device(device)), time.monotonic()
    hit = _FREE_CACHE.get(key)
    if hit is None or now - hit[0] > 1.0:
        hit = _FREE_CACHE[key] = (now, available_bytes(device))
    return hit[1]


def budget_bytes(device: torch.device | str = "cpu") -> int:
    env = os.environ.get("QLLM_MEMORY_BUDGET_GB")
    if env:
        try:
            gb = float(env)
        except ValueError:
            gb = float("nan")
        if not gb > 0 or gb == float("inf"):
            raise MemoryBudgetError(f"QLLM_MEMORY_BUDGET_GB must be a number of GiB > 0, got {env!r}")
        return int(gb * 2**30)
    return _cached_available(device) // 2


def check_budget(need: float, what: str, hint: str, device: torch.device | str = "cpu",
                 budget: int | None = None) -> None:
    """Raise MemoryBudgetError if ``need`` bytes exceed the budget; never allocates."""
    if budget is not None:
        source = "the backend's memory_budget_gb option"
    elif os.environ.get("QLLM_MEMORY_BUDGET_GB"):
        source = "QLLM_MEMORY_BUDGET_GB"
    else:
        source = "half of free memory; set QLLM_MEMORY_BUDGET_GB to change"
    budget = budget_bytes(device) if budget is None else budget
    if need > budget:
        raise MemoryBudgetError(
            f"{what} needs about {need / 2**30:.3g} GiB but the memory budget is "
            f"{budget / 2**30:.3g} GiB ({source}). {hint}")
