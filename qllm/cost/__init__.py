"""Resource cost: static gate counts (logical and transpiled onto named targets), counted circuit
executions per gradient method, hardware-profile projections of QPU time and price, and classical
parameters and FLOPs on the same table.

>>> from qllm.cost import logical_counts, analytic_executions, get_profile
>>> from qllm.circuits import build_circuit
>>> spec = build_circuit(n_qubits=4, n_layers=2)
>>> logical_counts(spec).n_2q, analytic_executions(spec, 8, "spsa")
(8, 24)

Modules: ``static`` (gate counts), ``targets`` (transpile targets), ``profiles`` (+
``profiles.json``: hardware data with sources), ``ledger`` (execution counting), ``flops``
(classical FLOPs), ``report`` (``cost_report`` and ``CostReport``), ``format`` (the text table),
``measure`` (simulator wall time and memory).
"""

from qllm.cost.flops import count_flops, count_params, transformer_flops_per_token
from qllm.cost.ledger import (
                              GRADIENTS,
                              CostLedger,
                              StepRecord,
                              analytic_executions,
                              circuits_per_parameter_set,
                              find_quantum_layers,
                              shift_terms,
)
from qllm.cost.profiles import (
                              LEAVES_OUT,
                              PROFILES,
                              HardwareProfile,
                              Projection,
                              get_profile,
                              shots_for_precision,
)
from qllm.cost.report import cost_report
from qllm.cost.report_types import CostReport
from qllm.cost.static import (
                              GateCounts,
                              circuit_counts,
                              logical_counts,
                              measurement_groups,
                              transpiled_circuit,
                              transpiled_counts,
)
from qllm.cost.targets import TARGETS, TargetDef, get_target

__all__ = [
                              "GRADIENTS",
                              "LEAVES_OUT",
                              "PROFILES",
                              "TARGETS",
                              "CostLedger",
                              "CostReport",
                              "GateCounts",
                              "HardwareProfile",
                              "Projection",
                              "StepRecord",
                              "TargetDef",
                              "analytic_executions",
                              "circuit_counts",
                              "circuits_per_parameter_set",
                              "cost_report",
                              "count_flops",
                              "count_params",
                              "find_quantum_layers",
                              "get_profile",
                              "get_target",
                              "logical_counts",
                              "measurement_groups",
                              "shift_terms",
                              "shots_for_precision",
                              "transformer_flops_per_token",
                              "transpiled_circuit",
                              "transpiled_counts",
]
