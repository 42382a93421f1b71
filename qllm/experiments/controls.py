"""Controls that isolate the circuit's contribution to a hybrid (issue: "does the quantum part
help?"; QASA arXiv:2504.05336, Bowles et al. arXiv:2403.07059):

- ``bottleneck``: the same model with every circuit replaced by a classical map of the same
  shape, bounded by tanh, with no more parameters than the circuit (``qllm.layers.bottleneck``);
- ``no_entanglement``: the same circuits with every multi-qubit gate removed, so the state stays
  a product state (classically simulable in time linear in the qubits), trained the same way.

Both keep everything around the circuit (projections, norms, attention, head) as it is, so a
hybrid that ties with them owes nothing to the circuit's quantum character. The width- and
parameter-matched classical models are in ``qllm.experiments.baselines``.

>>> from qllm.config import ModelConfig
>>> sorted(controls_for(ModelConfig(input_dim=4, ffn="quantum")))
['bottleneck', 'no_entanglement']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qllm.config import ModelConfig

# The circuit sublayer kinds each control can stand in for (qsann has no bottleneck twin: its
# query and key circuits measure one value, not the n_observables vector).
BOTTLENECK_OF = {"quantum": "bottleneck"}
CONTROL_NAMES = ("bottleneck", "no_entanglement")


def _kinds(value, mapping: dict):
    """Map one sublayer name, or a per-block list of names, through ``mapping``."""
    if isinstance(value, list):
        return [mapping.get(k, k) for k in value]
    return mapping.get(value, value)


def _block_kinds(cfg: ModelConfig) -> set[str]:
    return {k for i in range(cfg.n_layer) for k in cfg.block_kinds(i)}


def bottleneck_control(hybrid: ModelConfig) -> ModelConfig | None:
    """The hybrid with every ``quantum`` attention/FFN sublayer replaced by its bottleneck twin;
    None if the hybrid has no circuit sublayer the bottleneck can replace (or any it cannot)."""
    kinds = _block_kinds(hybrid) - {"classical"}
    if not kinds or not kinds <= set(BOTTLENECK_OF):
        return None
    return hybrid.override({"attn": _kinds(hybrid.attn, BOTTLENECK_OF),
                            "ffn": _kinds(hybrid.ffn, BOTTLENECK_OF)})


def no_entanglement_control(hybrid: ModelConfig) -> ModelConfig | None:
    """The hybrid with ``quantum.entangling=False``; None if it has no quantum sublayer, if its
    circuit has no multi-qubit gate to remove, or if removing them leaves no trainable weight."""
    if not _block_kinds(hybrid) - {"classical", "bottleneck"}:
        return None
    spec = hybrid.quantum.build_spec()
    stripped = spec.without_entanglement()
    if len(stripped.ops) == len(spec.ops) or stripped.n_weights == 0:
        return None
    return hybrid.override({"quantum.entangling": False})


def controls_for(hybrid: ModelConfig) -> dict[str, ModelConfig]:
    """Every circuit control that applies to ``hybrid``: ``{"bottleneck": cfg,
    "no_entanglement": cfg}`` (a control that does not apply is left out)."""
    out = {"bottleneck": bottleneck_control(hybrid),
           "no_entanglement": no_entanglement_control(hybrid)}
    return {k: v for k, v in out.items() if v is not None}
