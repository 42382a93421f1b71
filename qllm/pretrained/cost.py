"""Cost of an adapter on a pretrained backbone: trainable parameters, the backbone's and the
adapter's classical FLOPs per token, and, per quantum adapter site, circuit executions per token
(forward and per training step), shots and projected QPU time, from ``qllm.cost.cost_report``.

FLOPs are counted with ``torch.utils.flop_counter`` on one forward (``qllm.cost.count_flops``):
2 per multiply-add, matrix products and attention only, circuit simulation excluded. The adapter's
share is the FLOPs of its own modules (branches, peft's lora_A / lora_B, the head); the backbone's
is the rest.
"""

from __future__ import annotations

import torch

from qllm.pretrained.adapters import AdaptedModel, Branched
from qllm.pretrained.backbones import Backbone


def parameter_counts(model: AdaptedModel) -> dict:
    """Trainable, frozen and circuit parameters of an adapted model."""
    from qllm.quantum_layer import QuantumLayer

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    circuit = sum(m.weights.numel() for m in model.modules() if isinstance(m, QuantumLayer))
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "frozen": total - trainable, "circuit_weights": circuit,
            "total": total}


def adapter_module_names(model: AdaptedModel) -> list[str]:
    """Names of the modules an adapter added: the head, each branch, peft's LoRA matrices."""
    names = ["head"]
    for name, m in model.named_modules():
        if isinstance(m, Branched):
            names.append(f"{name}.branch")
        elif name.rpartition(".")[2] in ("lora_A", "lora_B"):
            names += [f"{name}.{k}" for k in m.keys()]
    return names


def example_input(backbone: Backbone, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One sequence of ``seq_len`` real tokens (no padding): (1, T) ids and mask."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(low=0, high=int(backbone.tokenizer.vocab_size), size=(1, seq_len),
                        generator=g)
    return ids, torch.ones_like(ids)


def flops_per_token(model: AdaptedModel, backbone: Backbone, seq_len: int) -> dict:
    """Forward FLOPs per token: ``{"backbone", "adapter", "total"}``."""
    from qllm.cost import count_flops

    with torch.no_grad():
        flops = count_flops(model, example_input(backbone, seq_len))
    adapter = sum(flops.get(n, 0) for n in adapter_module_names(model))
    total = flops[""]
    return {"backbone": (total - adapter) / seq_len, "adapter": adapter / seq_len,
            "total": total / seq_len}


def adapter_cost(model: AdaptedModel, backbone: Backbone, seq_len: int, batch_size: int = 16,
                 steps_per_epoch: int = 1, epochs: int = 1, shots: int | None = 1024,
                 gradient: str = "parameter-shift", target: str | None = None,
                 profile=("ibm_heron",)) -> dict:
    """The cost record of a results JSON.

    Args:
        model / backbone: the adapted model and its backbone.
        seq_len: tokens per sequence.
        batch_size / steps_per_epoch / epochs: the run, for per-step and per-run projections.
        shots / gradient / target / profile: as ``qllm.cost.cost_report`` (hardware training
            needs a shift rule: parameter-shift by default).
    Returns:
        ``{"params", "flops_per_token", "sites", "qpu", "report"}``: ``sites`` lists each quantum
        layer with its circuits per token forward and per training step; ``qpu`` the projection
        per profile (training step, run, one inference token); ``report`` the full CostReport.
    """
    from qllm.cost import cost_report

    out = {"params": parameter_counts(model),
           "flops_per_token": flops_per_token(model, backbone, seq_len), "sites": [], "qpu": {}}
    report = cost_report(model, example_input=example_input(backbone, seq_len), shots=shots,
                         gradient=gradient, target=target, profile=profile,
                         batch_size=batch_size, steps_per_epoch=steps_per_epoch, epochs=epochs)
    out["sites"] = [{"name": r.name, "n_qubits": r.n_qubits, "n_weights": r.n_weights,
                     "circuits_per_token": r.circuits_per_token,
                     "circuits_per_token_step": r.circuits_per_token_step} for r in report.quantum]
    out["qpu"] = report.projections
    out["report"] = report.to_dict()
    return out
