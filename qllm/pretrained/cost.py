"""Cost of an adapter on a pretrained backbone: trainable parameters, the backbone's and the
adapter's classical FLOPs per token, and, per quantum adapter site, circuit executions per token
(forward and per training step), shots and projected QPU time, from ``qllm.cost.cost_report``.
Input-free sites (the soft-prompt generator: circuits on trainable angles, no text) are charged
once per training step and once at inference, not per text or token (``input_free_sites``).

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


def example_input(backbone: Backbone, seq_len: int,
                  n_seq: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_seq`` sequences of ``seq_len`` real tokens (no padding): (n_seq, T) ids and mask."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(low=0, high=int(backbone.tokenizer.vocab_size), size=(n_seq, seq_len),
                        generator=g)
    return ids, torch.ones_like(ids)


def _parameter_sets(model: AdaptedModel, backbone: Backbone, seq_len: int,
                    n_seq: int) -> dict[str, int]:
    """Parameter sets (circuits) each QuantumLayer gets in one forward of ``n_seq`` sequences."""
    from qllm.cost import find_quantum_layers

    layers = find_quantum_layers(model)
    rows = {name: 0 for name, _ in layers}

    def count(name):
        def hook(mod, args):
            rows[name] += args[0].numel() // max(args[0].shape[-1], 1)
        return hook

    hooks = [layer.register_forward_pre_hook(count(name)) for name, layer in layers]
    try:
        if layers:
            with torch.no_grad():
                model(*example_input(backbone, seq_len, n_seq))
    finally:
        for h in hooks:
            h.remove()
    return rows


def input_free_sites(model: AdaptedModel, backbone: Backbone, seq_len: int) -> list[str]:
    """Quantum layers whose circuits do not grow with the batch: a forward of 2 sequences runs
    them on as many parameter sets as a forward of 1 (``quantum_prompt``'s generator: trainable
    angles, no text), so they run once per step, not once per text or token."""
    one = _parameter_sets(model, backbone, seq_len, 1)
    two = _parameter_sets(model, backbone, seq_len, 2)
    return [name for name in one if one[name] == two[name]]


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

    Circuits that read the text (LoRA branches, adapters, heads) run once per token or per
    sequence; input-free ones (``input_free_sites``: the soft-prompt generator) run once per
    training step whatever the batch, and once at inference, after which the prompts are reused
    for every text. The counted dry run covers a whole batch when the model has input-free sites,
    so each step's projection charges them once.

    Args:
        model / backbone: the adapted model and its backbone.
        seq_len: tokens per sequence.
        batch_size / steps_per_epoch / epochs: the run, for per-step and per-run projections.
        shots / gradient / target / profile: as ``qllm.cost.cost_report`` (hardware training
            needs a shift rule: parameter-shift by default).
    Returns:
        ``{"params", "flops_per_token", "sites", "qpu", "report"}``: ``sites`` lists each quantum
        layer with its circuits per token forward and per training step (input-free sites:
        0 per token, ``circuits_per_forward`` and ``circuits_per_step`` instead); ``qpu`` the
        projection per profile (training step, epoch, run, one inference token, and, with
        input-free sites, ``inference_once``: computing them once for all texts);
        ``report`` the full CostReport.
    """
    from qllm.cost import cost_report

    free = input_free_sites(model, backbone, seq_len)
    n_seq = batch_size if free else 1
    report = cost_report(model, example_input=example_input(backbone, seq_len, n_seq),
                         shots=shots, gradient=gradient, target=target, profile=profile,
                         batch_size=batch_size, steps_per_epoch=steps_per_epoch, epochs=epochs)
    tokens = seq_len * n_seq
    sites = []
    for r in report.quantum:
        site = {"name": r.name, "n_qubits": r.n_qubits, "n_weights": r.n_weights,
                "input_free": r.name in free, "circuits_per_token": r.circuits_per_token,
                "circuits_per_token_step": r.circuits_per_token_step}
        if site["input_free"]:
            site.update(circuits_per_token=0.0, circuits_per_token_step=0.0,
                        circuits_per_forward=round(r.circuits_per_token * tokens),
                        circuits_per_step=round(r.circuits_per_token_step * tokens))
        sites.append(site)
    qpu = report.projections
    if free:
        qpu = {name: _cached_inference(proj, report, free, name) for name, proj in qpu.items()}
    return {"params": parameter_counts(model),
            "flops_per_token": flops_per_token(model, backbone, seq_len), "sites": sites,
            "qpu": qpu, "report": report.to_dict()}


def _cached_inference(proj: dict, report, free: list[str], profile: str) -> dict:
    """``proj`` with inference re-counted for input-free sites: their circuits run once
    (``inference_once``: one forward of each, measurement settings x parameter sets, one job
    per call) and nothing per token. Every site input-free: ``per_inference_token`` is zero;
    otherwise the dry run's share (input-free circuits once per batch) stays, with a note."""
    from qllm.cost import get_profile
    from qllm.cost.ledger import route_work

    p = get_profile(profile)
    tokens = report.settings["seq_len"] * report.settings["batch_size"]
    once = []
    for r in report.quantum:
        if r.name in free:
            e, j = route_work(r.route, r.circuits_per_token * tokens * r.measurement_settings,
                              r.calls_per_forward)
            once.append(p.project(e, report.settings["shots"], j, r.shot_seconds[profile]))
    out = {**proj, "inference_once": _total(once).to_dict()}
    if len(free) == len(report.quantum):
        out["per_inference_token"] = p.project(0, report.settings["shots"], 0, 0.0).to_dict()
    else:
        report.notes.append("input-free sites are charged once per batch of "
                            f"{report.settings['batch_size']} texts in per_inference_token")
    return out


def _total(parts):
    """The sum of Projections (a price when any part has one, as ``cost_report`` sums)."""
    from qllm.cost.profiles import Projection

    price = None
    if any(x.price is not None for x in parts):
        price = sum(x.price or 0.0 for x in parts)
    return Projection(sum(x.executions for x in parts), sum(x.shots for x in parts),
                      sum(x.jobs for x in parts), sum(x.qpu_seconds for x in parts), price)
