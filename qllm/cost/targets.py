"""Named transpile targets: IBM fake backends (real calibration snapshots shipped with
``qiskit-ibm-runtime``) and all-to-all trapped-ion gate sets. Loaded lazily and cached.

>>> sorted(TARGETS)[:2]
['ibm_brisbane', 'ibm_manila']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from qllm.errors import ConfigError, SpecError, lookup
from qllm.hardware.fake_devices import fake_backend


@dataclass(frozen=True)
class TargetDef:
    """A transpile target.

    Attributes:
        name: the short name used in configs and the CLI.
        description: one line for tables.
        n_qubits: physical qubits.
        fake_backend: a fake device name (``qllm.hardware.fake_devices``; IBM targets), or "".
        basis_gates: native gates of an all-to-all target (trapped ions), else ().
    """

    name: str
    description: str
    n_qubits: int
    fake_backend: str = ""
    basis_gates: tuple[str, ...] = ()

    def check_fits(self, spec) -> None:
        """Raise SpecError when ``spec`` needs more qubits than this target has."""
        if spec.n_qubits > self.n_qubits:
            fits = [t.name for t in TARGETS.values() if t.n_qubits >= spec.n_qubits]
            raise SpecError(
                f"circuit {spec.name or 'spec'!r} needs {spec.n_qubits} qubits but target "
                f"{self.name!r} ({self.description}) has {self.n_qubits}; targets with enough "
                f"qubits: {', '.join(fits) or 'none'}")

    def transpile_kwargs(self) -> dict:
        """Keyword arguments for ``qiskit.transpile``: ``backend=`` or ``target=``."""
        if self.fake_backend:
            return {"backend": fake_backend(self.fake_backend)}
        return {"target": _all_to_all_target(self.basis_gates, self.n_qubits)}

    def qiskit_target(self):
        """The ``qiskit.transpiler.Target`` (the fake backend's, with its calibrated durations)."""
        kw = self.transpile_kwargs()
        return kw["backend"].target if "backend" in kw else kw["target"]


TARGETS: dict[str, TargetDef] = {t.name: t for t in [
    TargetDef("ibm_torino", "IBM Heron r1 (FakeTorino), heavy-hex, CZ + SX + RZ", 133,
              "fake_torino"),
    TargetDef("ibm_brisbane", "IBM Eagle r3 (FakeBrisbane), heavy-hex, ECR + SX + RZ", 127,
              "fake_brisbane"),
    TargetDef("ibm_manila", "IBM Falcon (FakeManilaV2), 5-qubit line, CX + SX + RZ", 5,
              "fake_manila"),
    # IonQ's native gates are GPi/GPi2/MS; Qiskit has no such gates, so RXX (the MS family) and
    # rotations stand in: the same number of 2-qubit gates, all-to-all.
    TargetDef("ionq_aria", "trapped ion, IonQ Aria class: all-to-all, RXX + RX/RY/RZ", 25,
              basis_gates=("rx", "ry", "rz", "rxx")),
    # Quantinuum H1 natives: U1q (an RX/RY-axis rotation), RZ, arbitrary-angle ZZ.
    TargetDef("quantinuum_h1", "trapped ion, Quantinuum H1 class: all-to-all, RZZ + RX/RY/RZ", 20,
              basis_gates=("rx", "ry", "rz", "rzz")),
]}


def get_target(name: str) -> TargetDef:
    """Look up a target by name; unknown names fail with the list of known ones."""
    if isinstance(name, TargetDef):
        return name
    return lookup(TARGETS, name, "target", ConfigError)


@cache
def _all_to_all_target(basis_gates: tuple[str, ...], n_qubits: int):
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import RXGate, RXXGate, RYGate, RZGate, RZZGate
    from qiskit.transpiler import Target

    gates = {"rx": RXGate, "ry": RYGate, "rz": RZGate, "rxx": RXXGate, "rzz": RZZGate}
    target = Target(num_qubits=n_qubits)
    theta = Parameter("θ")
    for name in basis_gates:
        g = gates[name](theta)
        if g.num_qubits == 1:
            target.add_instruction(g, {(q,): None for q in range(n_qubits)})
        else:
            target.add_instruction(g, {(i, j): None for i in range(n_qubits)
                                       for j in range(n_qubits) if i != j})
    return target
