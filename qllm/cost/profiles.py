"""Hardware profiles (gate, readout, reset and per-job times, prices) loaded from
``profiles.json``, which cites a source for every number, and the QPU-time projection.

What a projection leaves out (stated in every report, see ``LEAVES_OUT``): queueing, calibration
and maintenance downtime, error mitigation and suppression overheads (extra circuits, twirling,
dynamical decoupling), classical compilation and transpilation time, data transfer, session
minimums, and any retries. It counts gates, readout and the repetition delay per shot, plus a
fixed latency per job.

>>> p = get_profile("ibm_heron")
>>> p.shots_for_precision(0.01)
10000
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from qllm.errors import ConfigError, lookup

LEAVES_OUT = ("queueing, calibration downtime, error-mitigation overheads (extra circuits, "
              "twirling), compilation/transpilation time, data transfer, session minimums and "
              "retries")


def shots_for_precision(eps: float) -> int:
    """Shots so that a ±1-valued observable's standard error is at most ``eps``: the variance is at
    most 1, so the standard error is at most 1/sqrt(shots), and shots >= 1/eps^2 suffices."""
    if not (isinstance(eps, (int, float)) and 0 < eps <= 1):
        raise ConfigError(f"eps must be a number in (0, 1], got {eps!r}")
    return math.ceil(1.0 / eps**2 - 1e-9)


@dataclass(frozen=True)
class Projection:
    """Projected QPU time and price of a workload on one profile."""

    # circuits run (parameter sets x measurement settings), total shots, jobs: floats in a
    # per-token share of a sequence's workload
    executions: float
    shots: float
    jobs: float
    qpu_seconds: float
    price: float | None  # USD; None when the profile publishes no price

    def scaled(self, k: float) -> Projection:
        """The same workload ``k`` times (k = steps per epoch, or 1/T for a per-token share)."""
        return Projection(self.executions * k, self.shots * k, self.jobs * k,
                          self.qpu_seconds * k, None if self.price is None else self.price * k)

    def to_dict(self) -> dict:
        return {"executions": self.executions, "shots": self.shots, "jobs": self.jobs,
                "qpu_seconds": self.qpu_seconds, "price_usd": self.price}


@dataclass(frozen=True)
class HardwareProfile:
    """One QPU's timing and price (seconds, USD). See ``profiles.json`` for sources.

    Attributes:
        t_1q / t_2q: one- and two-qubit gate times; gates named in ``virtual_gates`` take 0 s.
        t_readout: measurement time; t_reset / rep_delay: time between shots (the larger counts).
        job_latency: fixed time per job (submission, loading) counted inside QPU time.
        parallel_gates: gates on disjoint qubits overlap (critical path) or run one at a time.
        price_per_second / price_per_task (per circuit with its shots) / price_per_shot.
        target: the transpile target whose circuits this profile times.
    """

    name: str
    description: str
    technology: str
    target: str
    n_qubits: int
    t_1q: float
    t_2q: float
    t_readout: float
    t_reset: float
    rep_delay: float
    job_latency: float
    virtual_gates: tuple[str, ...] = ()
    parallel_gates: bool = True
    price_per_second: float | None = None
    price_per_task: float | None = None
    price_per_shot: float | None = None
    sources: tuple[dict, ...] = field(default=(), compare=False)
    assumptions: tuple[str, ...] = field(default=(), compare=False)

    shots_for_precision = staticmethod(shots_for_precision)

    def gate_seconds(self, name: str, n_qubits: int) -> float:
        if name in self.virtual_gates:
            return 0.0
        return self.t_2q if n_qubits == 2 else self.t_1q

    def circuit_seconds(self, qc) -> float:
        """Duration of a transpiled ``QuantumCircuit``: the critical path of gate times when gates
        run in parallel, else their sum."""
        from qllm.cost.static import NON_GATES

        finish: dict = {}
        total = 0.0
        for inst in qc.data:
            op = inst.operation
            if op.name in NON_GATES:
                continue
            t = self.gate_seconds(op.name, op.num_qubits)
            total += t
            start = max((finish.get(q, 0.0) for q in inst.qubits), default=0.0)
            for q in inst.qubits:
                finish[q] = start + t
        return max(finish.values(), default=0.0) if self.parallel_gates else total

    def shot_seconds(self, qc) -> float:
        """One shot: the circuit, readout, and the reset / repetition delay before the next."""
        return self.circuit_seconds(qc) + self.t_readout + max(self.t_reset, self.rep_delay)

    def project(self, executions: int, shots_per_execution: int, jobs: int,
                shot_seconds: float) -> Projection:
        """QPU seconds = executions x shots x shot time + jobs x job latency; price from the
        profile's per-second, per-task and per-shot rates (None when none is published)."""
        shots = executions * shots_per_execution
        seconds = shots * shot_seconds + jobs * self.job_latency
        rates = (self.price_per_second, self.price_per_task, self.price_per_shot)
        price = None
        if any(r is not None for r in rates):
            price = ((self.price_per_second or 0.0) * seconds
                     + (self.price_per_task or 0.0) * executions
                     + (self.price_per_shot or 0.0) * shots)
        return Projection(executions, shots, jobs, seconds, price)

    def citation(self) -> str:
        return "; ".join(f"{s['what']} ({s['url']}, {s['date']})" for s in self.sources)


@cache
def load_profiles(path: str | None = None) -> dict[str, HardwareProfile]:
    """Profiles from ``profiles.json`` (or another file of the same layout)."""
    file = Path(path) if path else Path(__file__).with_name("profiles.json")
    data = json.loads(file.read_text())["profiles"]
    return {name: HardwareProfile(
        name=name, **{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
        for name, entry in data.items()}


PROFILES = load_profiles()


def get_profile(name: str | HardwareProfile) -> HardwareProfile:
    """Look up a profile by name; unknown names fail with the list of known ones."""
    if isinstance(name, HardwareProfile):
        return name
    return lookup(PROFILES, name, "hardware profile", ConfigError)
