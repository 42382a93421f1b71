"""``cost_report(model, ...)``: one table with every quantum sublayer's static and counted cost,
projected QPU time on hardware profiles, and the classical parameters and FLOPs beside it.

Example::

    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    model = HybridTransformer(ModelConfig(input_dim=4, n_classes=2, ffn="quantum"))
    print(cost_report(model, seq_len=16, shots=1000, gradient="parameter-shift"))
"""

from __future__ import annotations

import torch
from torch import nn

from qllm.cost.flops import count_flops, count_params
from qllm.cost.ledger import (
    GRADIENTS,
    SHIFT_METHODS,
    SIMULATED_METHODS,
    check_gradient,
    circuits_per_parameter_set,
    find_quantum_layers,
    route_for,
    route_of,
    route_work,
)
from qllm.cost.profiles import Projection, get_profile, shots_for_precision
from qllm.cost.report_types import ClassicalRow, CostReport, QuantumRow
from qllm.cost.static import circuit_counts, logical_counts, measurement_groups, transpiled_circuit
from qllm.cost.targets import get_target
from qllm.errors import ConfigError, QllmError
from qllm.validate import is_int

DEFAULT_PROFILES = ("ibm_heron", "ionq_aria")


# -- the dry run ----------------------------------------------------------------------------
def _example_input(model, seq_len):
    if not is_int(seq_len) or seq_len < 1:
        raise ConfigError(f"seq_len must be an int >= 1 (or pass example_input), got {seq_len!r}")
    custom = getattr(model, "example_input", None)  # e.g. a multimodal model's packed streams
    if callable(custom) and custom(seq_len) is not None:
        return custom(seq_len)
    cfg = getattr(model, "config", None)
    g = torch.Generator().manual_seed(0)
    if getattr(cfg, "vocab_size", None):
        return torch.randint(cfg.vocab_size, (1, seq_len), generator=g)  # (1, T) token ids
    if getattr(cfg, "input_dim", None):
        return torch.rand(1, seq_len, cfg.input_dim, generator=g)  # (1, T, d) features
    raise ConfigError("cannot build an input for this model: pass example_input= (a (B, T) "
                      "LongTensor or (B, T, d) float tensor), or give the model a .config with "
                      "vocab_size or input_dim")


def _first(x):
    return x[0] if isinstance(x, tuple) else x


def _layer_gradient(layer, gradient):
    """The report's gradient, else the layer's qllm gradient, else its PennyLane diff_method."""
    if gradient is not None:
        return gradient
    own = getattr(layer, "gradient", None)
    if own in SHIFT_METHODS:
        return own
    diff = getattr(layer.backend, "diff_method", None)
    if diff in GRADIENTS:
        return diff
    return own if own in SIMULATED_METHODS else "backprop"


def _dry_run(model, example_input, layers):
    """One forward with a hook on every QuantumLayer: parameter sets (rows) and calls per layer,
    whether its inputs need gradients; and the FLOPs of every submodule."""
    seen = {name: {"rows": 0, "calls": 0, "grad": False} for name, _ in layers}
    hooks = []
    for name, layer in layers:
        def pre_hook(mod, args, _name=name):
            x = args[0]
            seen[_name]["rows"] += x.numel() // max(x.shape[-1], 1)
            seen[_name]["calls"] += 1
            seen[_name]["grad"] |= bool(x.requires_grad)
        hooks.append(layer.register_forward_pre_hook(pre_hook))
    was_training = model.training
    model.eval()  # no dropout; the circuits run are the same
    try:
        with torch.enable_grad():  # so the hooks see which inputs need gradients
            flops = count_flops(model, example_input)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return seen, flops


def _sublayer(name: str, modules: dict) -> str:
    """The module a QuantumLayer serves: its parent, skipping ModuleList/ModuleDict containers
    (e.g. ``blocks.0.mixer`` for ``blocks.0.mixer.vqcs.3``); the layer itself at top level."""
    parent = name.rpartition(".")[0]
    while parent and isinstance(modules[parent], (nn.ModuleList, nn.ModuleDict)):
        parent = parent.rpartition(".")[0]
    return parent or name


def _classical_rows(model, flops, tokens, layers, baseline, baseline_flops):
    modules = dict(model.named_modules())
    base_modules = dict(baseline.named_modules()) if baseline is not None else {}
    sublayers = list(dict.fromkeys(_sublayer(n, modules) for n, _ in layers))
    rows = []
    for name in sublayers + [""]:
        m = modules[name]
        classical = count_params(m, exclude_quantum=True)
        row = ClassicalRow(name or "total", classical, count_params(m) - classical,
                           flops.get(name, 0) / tokens)
        if name in base_modules:
            row.baseline_params = count_params(base_modules[name])
            row.baseline_flops_per_token = baseline_flops.get(name, 0) / tokens
        rows.append(row)
    return rows


def _sum(projections: list[Projection]) -> Projection:
    price = None
    if any(p.price is not None for p in projections):
        price = sum(p.price or 0.0 for p in projections)
    return Projection(sum(p.executions for p in projections), sum(p.shots for p in projections),
                      sum(p.jobs for p in projections),
                      sum(p.qpu_seconds for p in projections), price)


def _check_int(name, v):
    if not is_int(v) or v < 1:
        raise ConfigError(f"{name} must be an int >= 1, got {v!r}")


def _check_arguments(batch_size, steps_per_epoch, epochs, n_spsa_samples, steps, shots,
                     gradient, route, route_options, target, profile, eps):
    """Refuse what cost_report cannot use, before any dry run; returns the resolved profiles,
    shots, eps, the shots eps asks for, and the notes so far."""
    for name, v in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                    ("epochs", epochs), ("n_spsa_samples", n_spsa_samples)):
        _check_int(name, v)
    if steps is not None:
        _check_int("steps", steps)
    if shots is not None:
        _check_int("shots", shots)
    if gradient is not None:
        check_gradient(gradient)
    if route is not None:
        route_for(route, **(route_options or {}))  # a bad name or mitigation fails here
    if target is not None:
        get_target(target)
    # a name, "a,b" (as the CLI passes it), or a list of names
    names = profile.split(",") if isinstance(profile, str) else list(profile or ())
    profiles = [get_profile(p) for p in names]
    eps = 0.01 if eps is None else eps
    eps_shots = shots_for_precision(eps)
    notes = []
    if shots is None:
        shots = eps_shots
        notes.append(f"shots not given: {shots} per circuit, the 1/eps^2 that bounds each "
                     f"expectation value's standard error by eps={eps}")
    return profiles, shots, eps, eps_shots, notes


def _default_input(model, seq_len):
    x = _example_input(model, seq_len)
    params = list(model.parameters())
    return x.to(params[0].device) if params else x  # a model on CUDA gets a CUDA input


def _baseline_flops(baseline, x) -> dict:
    if baseline is None:
        return {}
    was = baseline.training
    baseline.eval()
    try:
        with torch.no_grad():
            return count_flops(baseline, x)
    finally:
        baseline.train(was)


def _quantum_row(name, spec, seen, grad, tokens, n_spsa_samples, route, target,
                 optimization_level, seed) -> QuantumRow:
    """One layer's static counts (logical and on ``target``) and the circuits it ran per token."""
    groups = measurement_groups(spec)
    per_set = circuits_per_parameter_set(spec, grad, n_spsa_samples, seen["grad"])
    transpiled = None
    if target is not None:
        transpiled = circuit_counts(
            transpiled_circuit(spec, target, optimization_level, seed)).to_dict()
    return QuantumRow(name, spec.n_qubits, spec.n_weights, logical_counts(spec).to_dict(),
                      transpiled, grad, seen["grad"], groups, seen["rows"] / tokens,
                      seen["calls"], seen["rows"] / tokens * per_set * groups, route=route)


def _project_layer(p, row, spec, seen, n_seq, batch_size, shots, n_spsa_samples,
                   optimization_level, seed, notes):
    """``(training step, one sequence's forward)`` Projections of one layer on profile ``p``,
    or None (noted) when the circuit does not fit the profile's device."""
    try:
        qc = transpiled_circuit(spec, p.target, optimization_level, seed)
    except QllmError as e:
        notes.append(f"{p.name}: {row.name} not projected: {e}")
        return None
    shot_s = row.shot_seconds[p.name] = p.shot_seconds(qc)
    per_set = circuits_per_parameter_set(spec, row.gradient, n_spsa_samples, seen["grad"])
    rows_per_seq = seen["rows"] / n_seq
    groups = row.measurement_settings
    # a step: batch_size sequences forward + gradient; one job per backend call, and one more
    # per call for the batched shifted circuits, unless the route submits one job per circuit
    # (the PennyLane Qiskit plugin); mitigation multiplies the circuits
    e, j = route_work(row.route, rows_per_seq * batch_size * per_set * groups,
                      seen["calls"] * (2 if row.gradient in SHIFT_METHODS else 1))
    step = p.project(e, shots, j, shot_s)
    e, j = route_work(row.route, rows_per_seq * groups, seen["calls"])
    return step, p.project(e, shots, j, shot_s)


def _projection(parts, steps_per_epoch: int, steps: int, seq: int) -> dict:
    step = _sum([a for a, _ in parts])
    forward_seq = _sum([b for _, b in parts])
    return {"per_step": step.to_dict(), "per_epoch": step.scaled(steps_per_epoch).to_dict(),
            "per_run": step.scaled(steps).to_dict(),
            # one sequence's forward shared by its seq tokens (generation without a cache re-runs
            # the prefix: up to seq times more)
            "per_inference_token": forward_seq.scaled(1.0 / seq).to_dict()}


# -- the report -----------------------------------------------------------------------------
def cost_report(model, seq_len: int | None = None, shots: int | None = None,
                target: str | None = "ibm_torino", gradient: str | None = None,
                profile=DEFAULT_PROFILES, example_input=None, batch_size: int = 1,
                steps_per_epoch: int = 1, epochs: int = 1, n_spsa_samples: int = 1,
                eps: float | None = None, baseline=None, measure: bool = False,
                optimization_level: int = 1, seed: int = 7,
                steps: int | None = None, route: str | None = None,
                route_options: dict | None = None) -> CostReport:
    """Resource cost of a model with quantum sublayers, beside its classical cost.

    A counted dry run (one forward of ``example_input``, hooks on every ``QuantumLayer``) gives
    the circuits each layer runs per token; the gradient method multiplies them per training step
    (see ``qllm.cost.ledger``); hardware profiles turn executions, shots and jobs into QPU
    seconds and, where a price is published, dollars. The projection leaves out queueing,
    calibration, error-mitigation overheads, compilation and data transfer (``LEAVES_OUT``).

    Args:
        model: any nn.Module containing ``QuantumLayer``s (a classical one gives the classical
            table only).
        seq_len: tokens per sequence T of the dry run (needed unless ``example_input`` is given).
        shots: shots per circuit on hardware; None: ``shots_for_precision(eps)``.
        target: transpile target of the gate-count columns (``qllm.cost.targets.TARGETS``), or
            None to skip transpiling.
        gradient: "backprop", "adjoint", "parameter-shift" or "spsa" for every layer; None: each
            layer's own (its ``gradient`` attribute or PennyLane ``diff_method``, else backprop).
        profile: a profile name, comma-separated names, or a list (``qllm.cost.PROFILES``); each is
            timed on the circuits transpiled to its own target. Empty: no projection.
        example_input: one forward's input; default from ``model.config``: ``(1, T)`` token ids
            when it has ``vocab_size``, ``(1, T, input_dim)`` features otherwise.
        batch_size / steps_per_epoch / epochs: sequences per training step, steps per epoch,
            epochs: for the per-step, per-epoch and per-run projections.
        n_spsa_samples: random directions per SPSA gradient.
        eps: target standard error of each expectation value (default 0.01): the report gives
            the shots it needs, 1/eps^2.
        baseline: a classical model counted on the same input, row by row where names match.
        measure: also time forward + backward of ``example_input`` and report peak memory.
        optimization_level / seed: Qiskit transpiler level and ``seed_transpiler``.
        steps: training steps of the whole run (default steps_per_epoch x epochs; a run stopped
            by ``max_steps`` ran fewer).
        route / route_options: project as if every layer ran on this backend name (e.g.
            ``"pennylane:qiskit.remote"``: one job per circuit; ``"ibm:ibm_torino"`` with
            ``{"mitigation": "zne"}``), see ``qllm.cost.ledger.route_for``; None: each layer's own.
    Returns:
        a CostReport.
    """
    profiles, shots, eps, eps_shots, notes = _check_arguments(
        batch_size, steps_per_epoch, epochs, n_spsa_samples, steps, shots, gradient, route,
        route_options, target, profile, eps)
    x = example_input if example_input is not None else _default_input(model, seq_len)
    seq, n_seq = int(_first(x).shape[1]), int(_first(x).shape[0])  # sequences in the dry run
    layers = find_quantum_layers(model)
    seen, flops = _dry_run(model, x, layers)
    rows, parts = [], {p.name: [] for p in profiles}
    for name, layer in layers:
        grad = _layer_gradient(layer, gradient)
        layer_route = route_for(route, **(route_options or {})) if route else route_of(layer.backend)
        row = _quantum_row(name, layer.spec, seen[name], grad, seq * n_seq, n_spsa_samples,
                           layer_route, target, optimization_level, seed)
        for p in profiles:
            part = _project_layer(p, row, layer.spec, seen[name], n_seq, batch_size, shots,
                                  n_spsa_samples, optimization_level, seed, notes)
            if part is not None:
                parts[p.name].append(part)
        rows.append(row)
    projections = {p.name: _projection(parts[p.name], steps_per_epoch,
                                       steps or steps_per_epoch * epochs, seq)
                   for p in profiles if layers and len(parts[p.name]) == len(layers)}
    if profiles and any(r.gradient in SIMULATED_METHODS for r in rows):
        notes.append("backprop/adjoint gradients exist only in simulation: for those layers the "
                     "QPU projection counts forward circuits only (pass gradient="
                     "'parameter-shift' or 'spsa' to project training on hardware)")
    settings = {"seq_len": seq, "batch_size": batch_size, "steps_per_epoch": steps_per_epoch,
                "epochs": epochs, "steps": steps or steps_per_epoch * epochs, "shots": shots,
                "target": target, "gradient": gradient,
                "n_spsa_samples": n_spsa_samples, "eps": eps, "shots_for_eps": eps_shots,
                "optimization_level": optimization_level, "seed_transpiler": seed}
    classical = _classical_rows(model, flops, seq * n_seq, layers, baseline,
                                _baseline_flops(baseline, x))
    report = CostReport(
        type(model).__name__, settings, rows, classical, projections,
        {p.name: {"description": p.description, "target": p.target, "sources": list(p.sources),
                  "assumptions": list(p.assumptions)} for p in profiles},
        notes)
    _add_utilisation(report, model)
    if measure:
        from qllm.cost.measure import measure_step

        report.measured["model"] = measure_step(model, x)
        if baseline is not None:
            report.measured["baseline"] = measure_step(baseline, x)
    return report


def _add_utilisation(report: CostReport, model) -> None:
    """Mixture-of-experts sublayers: the share of training-time routing assignments each expert
    ran (and dropped over capacity), in ``report.utilisation`` and one note per sublayer."""
    for name, m in model.named_modules():
        if callable(getattr(m, "utilisation", None)) and hasattr(m, "n_experts"):
            u = report.utilisation[name] = m.utilisation()
            if u["assignments"]:
                shares = ", ".join(f"{100 * s:.1f}%" for s in u["share"])
                report.notes.append(f"{name}: experts ran {shares} of {u['assignments']} "
                                    f"training assignments ({100 * sum(u['dropped_share']):.1f}% "
                                    "dropped over capacity); top-k circuits per token, not "
                                    "one per expert")
