"""The rows and the report that ``qllm.cost.cost_report`` returns: plain data, with Markdown,
HTML and JSON views (``qllm.cost.format`` draws the tables)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from qllm.cost.profiles import LEAVES_OUT


@dataclass
class QuantumRow:
    """One QuantumLayer: static counts, and the circuits it runs per token."""

    name: str
    n_qubits: int
    n_weights: int
    logical: dict
    transpiled: dict | None  # counts on the report's target (None without a target)
    gradient: str
    inputs_trainable: bool  # its inputs need gradients: input-driven gates are shifted too
    measurement_settings: int  # qubit-wise commuting groups of its observables
    circuits_per_token: float  # forward parameter sets per token, counted in the dry run
    calls_per_forward: int  # backend calls (jobs) per forward of a batch
    circuits_per_token_step: float  # (forward + gradient) x measurement settings, per token
    shot_seconds: dict = field(default_factory=dict)  # profile -> seconds per shot
    route: dict = field(default_factory=dict)  # qllm.cost.ledger.route_of: jobs, mode, mitigation


@dataclass
class ClassicalRow:
    """Parameters and forward FLOPs per token of one sublayer (or "total"), and the baseline's
    module of the same name when there is one."""

    name: str
    params: int  # classical parameters (circuit weights excluded)
    quantum_weights: int
    flops_per_token: float  # nanoGPT convention; circuit simulation excluded
    baseline_params: int | None = None
    baseline_flops_per_token: float | None = None


@dataclass
class CostReport:
    """Everything ``cost_report`` found. ``str(report)`` is a Markdown table to paste; in a
    notebook the report displays as HTML tables (``_repr_html_``);
    ``to_dict()`` / ``to_json()`` hold the same data for results files."""

    model: str
    settings: dict
    quantum: list[QuantumRow]
    classical: list[ClassicalRow]
    projections: dict  # profile -> {"per_step", "per_epoch", "per_run", "per_inference_token"}
    profiles: dict  # profile -> {"description", "target", "sources", "assumptions"}
    notes: list[str]
    measured: dict = field(default_factory=dict)
    leaves_out: str = LEAVES_OUT
    utilisation: dict = field(default_factory=dict)  # MoE sublayer -> expert shares in training

    def to_dict(self) -> dict:
        return {"model": self.model, "settings": self.settings,
                "quantum": [vars(r) for r in self.quantum],
                "classical": [vars(r) for r in self.classical],
                "projections": self.projections, "profiles": self.profiles,
                "measured": self.measured, "notes": self.notes, "leaves_out": self.leaves_out,
                "utilisation": self.utilisation}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        from qllm.cost.format import format_report

        return format_report(self)

    def _repr_markdown_(self) -> str:  # notebooks: rendered tables, not a wrapped text block
        return str(self)

    def _repr_html_(self) -> str:
        from qllm.cost.format import format_report_html

        return format_report_html(self)
