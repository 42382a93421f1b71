"""Keep freed tensor memory in the process (glibc): no page faults for each step's new states.

Why: glibc hands blocks above its mmap threshold (128 KiB, rising to at most 32 MiB as blocks
are freed) straight back to the kernel, so a training step's state tensors (a few MiB each at
8-10 qubits) are fresh pages on every call: about 2,200 minor page faults per n = 8 step, a
third of its time (``benchmarks/engine_speed.py``). Raising the mmap and trim thresholds once
(``mallopt``, the in-process form of the allocator settings PyTorch's CPU tuning guide
recommends) lets freed blocks be reused. Linux with glibc only; ``QLLM_MALLOC_TUNING=0``, or
any glibc malloc setting in the environment (``MALLOC_*_``, ``GLIBC_TUNABLES``), leaves the
allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 512 * 2**20  # free memory kept at the heap's top before it is returned


def tune_allocator() -> bool:
    """Apply the thresholds once; True when they were set."""
    chosen = any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ)
    if chosen or os.environ.get("QLLM_MALLOC_TUNING", "1") == "0" \
            or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries: nothing to tune
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


TUNED = tune_allocator()
