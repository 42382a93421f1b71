"""The native batched statevector engine (see plan.py for the strategy)."""

from qllm.engine import allocator  # noqa: F401 (tunes glibc's allocator once, see there)
from qllm.engine.simulate import simulate, simulate_stacked, simulate_state

__all__ = ["simulate", "simulate_stacked", "simulate_state"]
