"""The native batched statevector engine (see plan.py for the strategy)."""

from qllm.engine.simulate import simulate, simulate_stacked, simulate_state

__all__ = ["simulate", "simulate_stacked", "simulate_state"]
