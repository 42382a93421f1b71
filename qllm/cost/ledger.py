"""Counting circuit executions, shots and jobs: analytic formulas per gradient method, and a
ledger that records what a model's quantum layers actually ran during training and inference.

Gradient methods and the circuits one step runs for a batch of B parameter sets (tokens):
- ``backprop`` / ``adjoint``: B (the forward only; the backward is simulation, no circuits; a
  QPU cannot run either).
- ``parameter-shift``: B * (1 + sum over shifted gate parameters of their shift terms), where a
  gate parameter with R distinct frequencies needs 2R shifted circuits (2 for RX/RY/RZ and
  other {1}-frequency gates, 4 for CRX/CRY/CRZ {0.5, 1} and RBS {1, 2}).
- ``spsa``: B * (1 + 2 * n_spsa_samples) (two perturbed circuits per random direction).

Shifted parameters are every weight-driven gate parameter, plus every input-driven one when the
layer's inputs need gradients (a quantum sublayer after a trainable projection); constants are
never shifted.

>>> from qllm.circuits import build_circuit
>>> spec = build_circuit(n_qubits=3, n_layers=2)  # 3 RY inputs, 12 weights on RY/RZ
>>> analytic_executions(spec, 5, "parameter-shift", inputs_trainable=False)
125
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from qllm.backends.base import ExecutionStats
from qllm.backends.gradients import (  # noqa: F401 (GRADIENTS, SHIFT_METHODS: re-exported)
    GRADIENTS,
    SHIFT_METHODS,
    SIMULATED_METHODS,
    gradient_circuits,
)
from qllm.errors import ConfigError
from qllm.spec import CircuitSpec


def check_gradient(gradient: str) -> str:
    if gradient not in GRADIENTS:
        raise ConfigError(f"gradient {gradient!r} is not one of {GRADIENTS}")
    return gradient


def shift_terms(spec: CircuitSpec, inputs_trainable: bool = True) -> int:
    """Shifted circuits per parameter set for one parameter-shift gradient: sum over the shifted
    gate parameters of 2 x (number of distinct frequencies of the gate); the count is the one
    ``qllm.backends.gradients`` executes."""
    return gradient_circuits(spec, "parameter-shift", 1, inputs_trainable, True)


def circuits_per_parameter_set(spec: CircuitSpec, gradient: str, n_spsa_samples: int = 1,
                               inputs_trainable: bool = True, backward: bool = True) -> int:
    """Circuits one parameter set (token) costs in a step: 1 forward, plus the gradient's."""
    check_gradient(gradient)
    if not backward or gradient in SIMULATED_METHODS:
        return 1
    if gradient == "parameter-shift":
        return 1 + shift_terms(spec, inputs_trainable)
    if not isinstance(n_spsa_samples, int) or n_spsa_samples < 1:
        raise ConfigError(f"n_spsa_samples must be an int >= 1, got {n_spsa_samples!r}")
    return 1 + 2 * n_spsa_samples


def analytic_executions(spec: CircuitSpec, batch: int, gradient: str, n_spsa_samples: int = 1,
                        inputs_trainable: bool = True, backward: bool = True) -> int:
    """Circuit executions of one forward (+ backward when ``backward``) over ``batch`` parameter
    sets. Multiply by ``shots`` for shots, and by ``measurement_groups(spec)`` for the measurement
    settings hardware needs when observables do not commute qubit-wise."""
    return batch * circuits_per_parameter_set(spec, gradient, n_spsa_samples, inputs_trainable,
                                              backward)


def find_quantum_layers(model) -> list[tuple[str, object]]:
    """``[(qualified name, QuantumLayer)]`` of a module (the module itself may be one)."""
    from qllm.quantum_layer import QuantumLayer

    return [(name or type(m).__name__, m) for name, m in model.named_modules()
            if isinstance(m, QuantumLayer)]


def route_of(backend) -> dict:
    """How ``backend`` submits work to a QPU, for the ledger and the projection.

    Returns:
        {"backend": name, "execution_mode": "batch" | "session" | "job" | "simulator",
        "jobs_per_circuit": True where every circuit is its own job (the PennyLane Qiskit
        plugin), "mitigation", "mitigation_factor": circuits and shots multiply by it (ZNE
        noise scales), "calibration_circuits_per_job": readout calibration}.
    """
    route = getattr(backend, "route", None) or getattr(backend, "mitigated", None)
    out = {"backend": getattr(backend, "name", type(backend).__name__),
           "execution_mode": getattr(backend, "execution_mode", "simulator"),
           "jobs_per_circuit": bool(getattr(backend, "qiskit", False)),
           "mitigation": "none", "mitigation_factor": 1, "calibration_circuits_per_job": 0}
    if out["jobs_per_circuit"]:
        out["execution_mode"] = "job"  # pennylane_qiskit: one primitive job per circuit
    if route is not None:
        out.update(mitigation=route.mitigation, mitigation_factor=len(route.scales),
                   calibration_circuits_per_job=2 if "readout" in route.mitigation else 0)
        if getattr(backend, "execution_mode", None) is None:
            out["execution_mode"] = route.mode
    return out


def route_for(name: str, **options) -> dict:
    """``route_of`` for a backend NAME, without building it (no device, no credentials): what
    ``qllm cost --route`` projects. ``options``: ``mode`` and ``mitigation`` / ``zne_scales``."""
    from qllm.backends import BACKENDS
    from qllm.hardware.mitigation import DEFAULT_SCALES, check_mitigation

    kind, _, device = name.partition(":") if isinstance(name, str) else ("", "", "")
    if kind not in BACKENDS:
        raise ConfigError(f"route {name!r} is not a backend name; allowed: 'torch', "
                          "'pennylane:<device>', 'aer:<fake_backend>', 'ibm:<device>'")
    mitigation, scales = check_mitigation(options.get("mitigation"),
                                          options.get("zne_scales", DEFAULT_SCALES))
    out = {"backend": name, "execution_mode": "simulator", "jobs_per_circuit": False,
           "mitigation": mitigation, "mitigation_factor": len(scales),
           "calibration_circuits_per_job": 2 if "readout" in mitigation else 0}
    if kind == "pennylane" and device.startswith("qiskit."):
        out.update(execution_mode="job", jobs_per_circuit=True)
    elif kind == "ibm":
        out["execution_mode"] = options.get("mode", "batch")
    return out


def route_work(route: dict, circuits: float, jobs: int) -> tuple[int, int]:
    """``(executions, jobs)`` for ``HardwareProfile.project``, as the route submits them:
    mitigation multiplies the circuits and adds calibration circuits per job; a one-job-per-circuit route has a job per circuit."""
    executions = round(circuits * route.get("mitigation_factor", 1)
                       + jobs * route.get("calibration_circuits_per_job", 0))
    return executions, executions if route.get("jobs_per_circuit") else jobs


def run_settings(results: dict) -> dict:
    """``cost_report`` keyword arguments of the run a results.json records (its batch size,
    steps per epoch, epochs, steps, shots and gradient), for ``qllm cost results.json``; {}
    for a plain config."""
    settings = (results.get("cost") or {}).get("settings") or {}
    keys = ("batch_size", "steps_per_epoch", "epochs", "steps", "shots", "gradient")
    return {k: settings[k] for k in keys if settings.get(k) is not None}


@dataclass
class StepRecord:
    """What one recorded step ran, per quantum layer (layers sharing a backend share a row)."""

    kind: str
    per_layer: dict[str, ExecutionStats] = field(default_factory=dict)
    pubs: dict[str, int] = field(default_factory=dict)  # PUBs inside those jobs (ibm: route)

    @property
    def total(self) -> ExecutionStats:
        t = ExecutionStats()
        for s in self.per_layer.values():
            t.add(s.circuits, s.shots, s.jobs)
        return t


class CostLedger:
    """Records circuit executions, shots and jobs of a model's quantum layers, step by step.

    Counts come from each backend's ``stats``: every circuit a backend runs, including the shifted
    circuits of ``qllm.backends.gradients``' parameter-shift and SPSA, and on PennyLane devices
    every circuit the device executes (PennyLane's own shift rules too), the executions
    ``qml.Tracker`` reports; jobs are what was submitted (one per circuit on the Qiskit plugin).

    Args:
        model: an nn.Module containing ``QuantumLayer``s (or one QuantumLayer).

    >>> ledger = CostLedger(model)                      # doctest: +SKIP
    >>> with ledger.step("train"):                      # doctest: +SKIP
    ...     model(x).sum().backward()
    >>> ledger.totals("train").circuits                 # doctest: +SKIP
    """

    def __init__(self, model):
        self.layers = find_quantum_layers(model)
        if not self.layers:
            raise ConfigError("the model contains no QuantumLayer: nothing to count")
        self.records: list[StepRecord] = []

    def _groups(self) -> dict[int, tuple[str, object, list]]:
        """Backends by identity (a backend shared by several layers is counted once):
        ``{id: (joined layer names, backend, [layers])}``."""
        groups: dict[int, tuple[str, object, list]] = {}
        for name, layer in self.layers:
            key = id(layer.backend)
            if key in groups:
                n, be, members = groups[key]
                groups[key] = (f"{n}+{name}", be, members + [layer])
            else:
                groups[key] = (name, layer.backend, [layer])
        return groups

    @contextmanager
    def step(self, kind: str = "train"):
        """Count everything the quantum layers run inside the ``with`` block as one step."""
        if kind not in ("train", "inference"):
            raise ConfigError(f"step kind {kind!r} is not one of ('train', 'inference')")
        groups = self._groups()
        before = {k: (ExecutionStats(**be.stats.as_dict()), getattr(be, "pubs", None))
                  for k, (_, be, _) in groups.items()}
        yield self
        record = StepRecord(kind)
        for k, (name, be, _) in groups.items():
            (b, pubs), a = before[k], be.stats
            record.per_layer[name] = ExecutionStats(a.circuits - b.circuits, a.shots - b.shots,
                                                    a.jobs - b.jobs)
            record.pubs[name] = (be.pubs - pubs) if pubs is not None else a.jobs - b.jobs
        self.records.append(record)

    def totals(self, kind: str | None = None) -> ExecutionStats:
        """Sum over recorded steps (of one kind, or all)."""
        t = ExecutionStats()
        for r in self.records:
            if kind is None or r.kind == kind:
                s = r.total
                t.add(s.circuits, s.shots, s.jobs)
        return t

    def per_layer(self, kind: str | None = None) -> dict[str, ExecutionStats]:
        out: dict[str, ExecutionStats] = {}
        for r in self.records:
            if kind is None or r.kind == kind:
                for name, s in r.per_layer.items():
                    out.setdefault(name, ExecutionStats()).add(s.circuits, s.shots, s.jobs)
        return out

    def pubs(self, kind: str | None = None) -> int:
        return sum(sum(r.pubs.values()) for r in self.records if kind is None or r.kind == kind)

    def routes(self) -> dict[str, dict]:
        """``{layer names: route_of(backend)}`` per backend."""
        return {name: route_of(be) for name, be, _ in self._groups().values()}

    def summary(self) -> dict:
        """Totals per kind (with PUBs and steps) and each backend's route, without the step list."""
        out = {}
        for k in ("train", "inference"):
            steps = sum(r.kind == k for r in self.records)
            out[k] = {**self.totals(k).as_dict(), "pubs": self.pubs(k), "steps": steps}
        return {**out, "routes": self.routes()}

    def to_dict(self) -> dict:
        return {"steps": [{"kind": r.kind, "per_layer": {n: s.as_dict()
                                                         for n, s in r.per_layer.items()},
                           "pubs": dict(r.pubs)}
                          for r in self.records],
                "totals": {k: self.totals(k).as_dict() for k in ("train", "inference")},
                "routes": self.routes()}


class _NoLedger:
    """Stands in for a CostLedger when the model has no quantum layer."""

    records = None

    @staticmethod
    def step(kind):
        from contextlib import nullcontext

        return nullcontext()


def run_ledger(model):
    """A CostLedger of ``model``, or a stand-in that counts nothing for a classical model."""
    return CostLedger(model) if find_quantum_layers(model) else _NoLedger()


def run_cost_options(model, gradient: str, options: dict) -> dict:
    """The projection's defaults from this run: its backend's shots (a Qiskit plugin device's
    default 1024 too) and its gradient (the config's); ``options`` (the caller's) win."""
    run = {}
    layers = find_quantum_layers(model)
    if layers:
        backend = layers[0][1].backend
        shots = getattr(backend, "sampled_shots", None) or getattr(backend, "shots", None)
        if shots:
            run["shots"] = int(shots)
        if gradient != "backprop":
            run["gradient"] = gradient
    return {**run, **options}
