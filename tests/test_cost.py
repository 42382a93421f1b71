"""qllm.cost: gate counts against PennyLane's specs and a direct qiskit.transpile, execution counts
against qml.Tracker and the analytic formulas, FLOPs against nanoGPT's formula, projections
against hand-computed values, and clear errors for bad input."""

import json
import math
import random

import numpy as np
import pytest
import torch
from qllm.circuits import build_circuit
from torch import nn

from qllm.backends import get_backend
from qllm.cost import (
    PROFILES,
    TARGETS,
    CostLedger,
    analytic_executions,
    cost_report,
    count_flops,
    get_profile,
    get_target,
    logical_counts,
    measurement_groups,
    shift_terms,
    shots_for_precision,
    transformer_flops_per_token,
    transpiled_counts,
)
from qllm.errors import ConfigError, SpecError
from qllm.gates import GATES
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, const, inp, w


def random_spec(seed: int, max_qubits: int = 5, n_ops: int = 14) -> CircuitSpec:
    """A seeded random circuit over every gate in the table, angles from inputs, weights and
    constants."""
    rng = random.Random(seed)
    n = rng.randint(2, max_qubits)
    ops, n_w, n_in = [], 0, 0
    for _ in range(n_ops):
        name = rng.choice(list(GATES))
        g = GATES[name]
        params = []
        for _ in range(g.n_params):
            kind = rng.choice(["input", "weight", "weight", "const"])
            if kind == "input":
                params.append(inp(n_in % 3))
                n_in += 1
            elif kind == "weight":
                params.append(w(n_w))
                n_w += 1
            else:
                params.append(const(rng.uniform(-3, 3)))
        ops.append(Op(name, tuple(rng.sample(range(n), g.n_qubits)), tuple(params)))
    return CircuitSpec(n, tuple(ops), name=f"random{seed}")


SEEDS = range(20)


# -- static counts --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_logical_counts_match_pennylane_specs(seed):
    import pennylane as qml

    spec = random_spec(seed)
    qnode = qml.QNode(spec.to_pennylane(), qml.device("default.qubit", wires=spec.n_qubits))
    x = torch.rand(max(spec.n_inputs, 1), dtype=torch.float64)
    wts = torch.rand(max(spec.n_weights, 1), dtype=torch.float64)
    res = qml.specs(qnode, level="device")(x, wts).resources
    ours = logical_counts(spec)
    # every gate in the table runs natively on default.qubit: names map one to one
    assert {GATES[g].pennylane: c for g, c in ours.ops.items()} == dict(res.gate_types)
    assert ours.n_gates == res.num_gates
    assert ours.depth == res.depth
    assert (ours.n_1q, ours.n_2q) == (res.gate_sizes.get(1, 0), res.gate_sizes.get(2, 0))


def _direct_counts(tq):
    """Counts read straight off a transpiled QuantumCircuit with Qiskit's own methods."""
    ops = {k: v for k, v in tq.count_ops().items() if k not in ("measure", "barrier")}
    return {"ops": ops, "n_2q": tq.num_nonlocal_gates(), "depth": tq.depth(),
            "depth_2q": tq.depth(lambda i: i.operation.num_qubits == 2),
            "n_1q": sum(v for k, v in ops.items()) - tq.num_nonlocal_gates()}


@pytest.mark.parametrize("seed", SEEDS)
def test_transpiled_counts_match_direct_transpile(seed):
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    spec = random_spec(seed)
    direct = transpile(spec.to_qiskit(), backend=FakeManilaV2(), optimization_level=1,
                       seed_transpiler=11)
    ours = transpiled_counts(spec, "ibm_manila", optimization_level=1, seed=11)
    ref = _direct_counts(direct)
    assert ours.ops == ref["ops"]
    assert (ours.n_1q, ours.n_2q, ours.depth, ours.depth_2q) == (
        ref["n_1q"], ref["n_2q"], ref["depth"], ref["depth_2q"])
    assert set(ours.ops) <= {"rz", "sx", "x", "cx"}  # Manila's native gates only


def test_ion_target_all_to_all_and_torino_counts():
    from qiskit import transpile

    spec = build_circuit(n_qubits=6, n_layers=2, ansatz="strongly_entangling")
    ion = transpiled_counts(spec, "ionq_aria")
    assert set(ion.ops) <= {"rx", "ry", "rz", "rxx"}
    # all-to-all: no routing, so exactly one RXX per logical CNOT
    assert ion.n_2q == logical_counts(spec).n_2q
    torino = get_target("ibm_torino")
    direct = transpile(spec.to_qiskit(), optimization_level=1, seed_transpiler=7,
                       **torino.transpile_kwargs())
    ours = transpiled_counts(spec, "ibm_torino")
    ref = _direct_counts(direct)
    assert (ours.ops, ours.n_2q, ours.depth, ours.depth_2q) == (
        ref["ops"], ref["n_2q"], ref["depth"], ref["depth_2q"])
    assert "cz" in ours.ops and ours.n_2q >= ion.n_2q  # heavy-hex routing adds 2-qubit gates


def test_measurement_groups():
    spec = build_circuit(n_qubits=2, n_layers=1)
    assert measurement_groups(spec) == 1  # Z on each qubit
    assert measurement_groups(spec.with_observables(["XI", "ZI"])) == 2
    assert measurement_groups(spec.with_observables(["XZ", "XI", "IZ", "YY"])) == 2


# -- execution counts -----------------------------------------------------------------------
def test_shift_terms_follow_gate_frequencies():
    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CRX", (0, 1), (w(0),)),
                           Op("RBS", (0, 1), (w(1),)), Op("Rot", (1,), (w(2), const(0.3), w(3))),
                           Op("RZ", (1,), (const(1.0),))))
    # CRX {0.5, 1}: 4 terms; RBS {1, 2}: 4; Rot: 2 per shifted angle (2 of 3); RY input: 2
    assert shift_terms(spec, inputs_trainable=False) == 4 + 4 + 2 + 2
    assert shift_terms(spec, inputs_trainable=True) == 2 + 4 + 4 + 2 + 2
    assert analytic_executions(spec, 7, "spsa", n_spsa_samples=3) == 7 * (1 + 6)
    assert analytic_executions(spec, 7, "backprop") == 7


def _pennylane_native(method, shots):
    """A PennyLane backend whose QNode differentiates itself (diff_method)."""
    backend = get_backend("pennylane:default.qubit", diff_method=method, shots=shots)
    assert backend.supports_backprop  # autograd reaches PennyLane, which runs the shift rule
    return backend


@pytest.mark.parametrize("method", ["parameter-shift", "spsa"])
def test_ledger_matches_tracker_and_formula_on_pennylane(method):
    import pennylane as qml

    spec = build_circuit(n_qubits=3, n_layers=2)  # 3 RY inputs, 12 RY/RZ weights
    B, shots = 5, 100
    layer = QuantumLayer(spec, backend=_pennylane_native(method, shots))
    x = torch.rand(B, spec.n_inputs)  # PennyLane cannot shift broadcast inputs: weights only
    ledger = CostLedger(layer)
    with ledger.step("train"):
        layer(x).sum().backward()
    counted = ledger.totals("train")
    expected = analytic_executions(spec, B, method, inputs_trainable=False)
    assert expected == (B * (1 + 2 * 12) if method == "parameter-shift" else B * 3)
    assert (counted.circuits, counted.shots) == (expected, expected * shots)
    # an independent tracker on a second, identical layer
    twin = QuantumLayer(spec, backend=_pennylane_native(method, shots))
    with qml.Tracker(twin.backend.qnode(spec).device) as tr:
        twin(x).sum().backward()
    assert (tr.totals["executions"], tr.totals["shots"]) == (expected, expected * shots)
    assert ledger.to_dict()["totals"]["train"]["circuits"] == expected


@pytest.mark.parametrize("method", ["parameter-shift", "spsa"])
@pytest.mark.parametrize("backend", ["pennylane:default.qubit", "aer", "pennylane-ps"])
def test_ledger_counts_qllm_gradients(method, backend):
    """qllm.gradients runs every shifted circuit through backend.expval: stats count them, for
    input and weight gradients alike, and PennyLane's tracker agrees."""
    import pennylane as qml

    spec = CircuitSpec(2, (Op("RY", (0,), (inp(0),)), Op("CRX", (0, 1), (w(0),)),
                           Op("RBS", (0, 1), (w(1),)), Op("RZ", (1,), (inp(1),))))
    B, shots = 3, 64
    options = {"shots": shots}
    if backend == "pennylane-ps":  # a QNode that could shift itself; qllm.gradients runs instead
        backend, options["diff_method"] = "pennylane:default.qubit", "parameter-shift"
    layer = QuantumLayer(spec, backend=backend, gradient=method, spsa_samples=2, **options)
    x = torch.rand(B, spec.n_inputs, requires_grad=True)
    ledger = CostLedger(layer)
    tracker = None
    with ledger.step():
        if backend.startswith("pennylane"):
            from qllm.gradients import angle_spec  # the circuit qllm.gradients executes

            tracker = qml.Tracker(layer.backend.qnode(angle_spec(spec)[0]).device)
            tracker.__enter__()
        layer(x).sum().backward()
        if tracker is not None:
            tracker.__exit__(None, None, None)
    expected = analytic_executions(spec, B, method, n_spsa_samples=2, inputs_trainable=True)
    by_hand = B * (1 + 2 + 4 + 4 + 2) if method == "parameter-shift" else B * (1 + 4)
    assert expected == by_hand
    assert (ledger.totals().circuits, ledger.totals().shots) == (expected, expected * shots)
    assert ledger.totals().jobs == 2  # the forward, and all shifted circuits in one job
    if tracker is not None:
        assert (tracker.totals["executions"], tracker.totals["shots"]) == (expected,
                                                                          expected * shots)


def test_ledger_torch_backprop_counts_forward_only():
    model = nn.Sequential(nn.Linear(6, 4), QuantumLayer(build_circuit(4, 1)), nn.Linear(4, 2))
    ledger = CostLedger(model)
    x = torch.rand(3, 7, 6)
    with ledger.step("train"):
        model(x).sum().backward()
    with ledger.step("inference"), torch.no_grad():
        model(x[:1])
    assert ledger.totals("train").circuits == 21 == analytic_executions(
        build_circuit(4, 1), 21, "backprop")
    assert ledger.totals("inference").circuits == 7
    assert list(ledger.per_layer()) == ["1"]


# -- profiles and projections ---------------------------------------------------------------
def test_shots_for_precision_bounds_standard_error():
    assert shots_for_precision(0.01) == 10_000 and shots_for_precision(0.05) == 400
    # worst case: a fair ±1 coin has variance 1; the mean of 400 shots has std 0.05
    rng = np.random.default_rng(0)
    means = rng.choice([-1.0, 1.0], size=(4000, shots_for_precision(0.05))).mean(1)
    assert abs(means.std() - 0.05) < 0.003
    with pytest.raises(ConfigError, match="eps"):
        shots_for_precision(0)


def test_profile_timing_by_hand():
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(3)
    qc.sx(0)
    qc.rz(0.3, 1)
    qc.cz(0, 1)
    qc.sx(2)
    qc.sx(1)
    heron, aria = get_profile("ibm_heron"), get_profile("ionq_aria")
    # parallel: sx(0) | cz | sx(1) on the critical path, rz virtual, sx(2) overlaps
    assert heron.circuit_seconds(qc) == pytest.approx(heron.t_1q * 2 + heron.t_2q)
    # serial: every gate one after another
    assert aria.circuit_seconds(qc) == pytest.approx(4 * aria.t_1q + aria.t_2q)
    shot = heron.shot_seconds(qc)
    assert shot == pytest.approx(heron.t_1q * 2 + heron.t_2q + heron.t_readout + heron.rep_delay)
    p = heron.project(10, 1000, 2, shot)
    assert p.qpu_seconds == pytest.approx(10 * 1000 * shot + 2 * heron.job_latency)
    assert p.price == pytest.approx(p.qpu_seconds * heron.price_per_second)
    q = aria.project(10, 1000, 2, 1e-3)
    assert q.price == pytest.approx(10 * aria.price_per_task + 10_000 * aria.price_per_shot)
    for prof in PROFILES.values():  # every number has a source
        assert prof.sources and all(s["url"].startswith("https://") for s in prof.sources)


# -- classical FLOPs ------------------------------------------------------------------------
class TinyGPTBlock(nn.Module):
    """nanoGPT's block shape without biases in the count: qkv, attention, projection, MLP."""

    def __init__(self, C, nh):
        super().__init__()
        self.nh = nh
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.proj(torch.relu(self.fc(x)))


def test_flops_match_nanogpt_formula():
    C, L, T, B = 32, 2, 12, 3
    model = nn.Sequential(*[TinyGPTBlock(C, 4) for _ in range(L)])
    n_matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    flops = count_flops(model, torch.rand(B, T, C))
    assert flops[""] / (B * T) == transformer_flops_per_token(n_matmul, L, C, T)
    assert flops["0"] == flops["1"] == flops[""] / 2


# -- the report -----------------------------------------------------------------------------
class Hybrid(nn.Module):
    """Two quantum sublayers of different widths around classical projections."""

    def __init__(self, backend="torch"):
        super().__init__()
        self.embed = nn.Linear(5, 8)
        self.ffn = nn.ModuleDict({"down": nn.Linear(8, 3), "up": nn.Linear(3, 8)})
        self.ffn_vqc = QuantumLayer(build_circuit(3, 2), backend=backend)
        self.mix_down = nn.Linear(8, 4)
        self.mix = QuantumLayer(build_circuit(4, 1, ansatz="rbs_pyramid"), backend=backend)

    def forward(self, x):  # (B, T, 5)
        h = self.embed(x)
        h = h + self.ffn["up"](self.ffn_vqc(self.ffn["down"](h)))
        return self.mix(self.mix_down(h)).sum(-1)  # (B, T)


def test_cost_report_counts_and_projection():
    torch.manual_seed(0)
    model = Hybrid()
    B, T, shots = 2, 6, 500
    r = cost_report(model, example_input=torch.rand(B, T, 5), shots=shots, target="ibm_manila",
                    gradient="parameter-shift", profile="ionq_aria", batch_size=4,
                    steps_per_epoch=3, epochs=2)
    by_name = {q.name: q for q in r.quantum}
    assert set(by_name) == {"ffn_vqc", "mix"}
    for name, q in by_name.items():
        spec = dict(model.named_modules())[name].spec
        assert q.circuits_per_token == 1 and q.inputs_trainable
        assert q.circuits_per_token_step == 1 + shift_terms(spec)
        assert q.logical == logical_counts(spec).to_dict()
        assert q.transpiled == transpiled_counts(spec, "ibm_manila").to_dict()
    aria = get_profile("ionq_aria")
    step_exec = sum(4 * T * q.circuits_per_token_step for q in r.quantum)
    seconds = sum(4 * T * q.circuits_per_token_step * shots * q.shot_seconds["ionq_aria"]
                  + 2 * aria.job_latency for q in r.quantum)  # fwd + shifted job per layer
    pr = r.projections["ionq_aria"]
    assert pr["per_step"]["executions"] == step_exec
    assert pr["per_step"]["qpu_seconds"] == pytest.approx(seconds)
    assert pr["per_run"]["qpu_seconds"] == pytest.approx(6 * seconds)
    assert pr["per_inference_token"]["executions"] == pytest.approx(2)  # one circuit per layer
    assert pr["per_inference_token"]["jobs"] == pytest.approx(2 / T)  # a job per layer per sequence
    text = str(r)
    assert "learn.microsoft.com" in text and "leaves out" in text and "ffn_vqc" in text
    assert json.loads(r.to_json())["quantum"][0]["n_qubits"] in (3, 4)


def test_cost_report_with_baseline_and_spsa_heron():
    model, base = Hybrid(), Hybrid()
    r = cost_report(model, example_input=torch.rand(1, 4, 5), shots=100, target=None,
                    gradient="spsa", n_spsa_samples=2, profile="ibm_heron,ionq_aria", baseline=base,
                    measure=True)
    assert all(q.circuits_per_token_step == 5 for q in r.quantum)
    total = next(c for c in r.classical if c.name == "total")
    assert total.baseline_params == sum(p.numel() for p in base.parameters())
    assert total.quantum_weights == model.ffn_vqc.spec.n_weights + model.mix.spec.n_weights
    assert set(r.projections) == {"ibm_heron", "ionq_aria"}  # "a,b" as the CLI passes it
    assert r.projections["ibm_heron"]["per_step"]["price_usd"] > 0
    assert r.measured["model"]["wall_seconds_fwd_bwd"] > 0


def test_cost_report_on_hybrid_transformer_config_input():
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    model = HybridTransformer(ModelConfig(vocab_size=11, n_classes=2, ffn="quantum",
                                          attn="quantum"))
    r = cost_report(model, seq_len=5, target="ionq_aria", profile=(), gradient="parameter-shift")
    assert r.quantum and all(q.circuits_per_token == 1 for q in r.quantum)
    assert len(r.quantum) == len(model.quantum_layers())
    # sublayers are the modules that own the circuits, past ModuleList containers
    names = [c.name for c in r.classical]
    assert names == ["blocks.0.mixer", "blocks.0.ffn", "blocks.1.mixer", "blocks.1.ffn", "total"]
    assert all(c.flops_per_token >= 0 for c in r.classical)
    assert r.classical[-1].quantum_weights == sum(q.n_weights for q in r.quantum)


def test_cost_report_on_classical_model():
    from qllm.config import ModelConfig
    from qllm.model import HybridTransformer

    cfg = ModelConfig(vocab_size=11, n_classes=2, n_embd=16, n_head=2, n_layer=2)
    model = HybridTransformer(cfg)
    r = cost_report(model, seq_len=8, profile="ibm_heron")
    assert r.quantum == [] and r.projections == {}
    total = r.classical[-1]
    assert total.params == sum(p.numel() for p in model.parameters())
    # nanoGPT's formula on the blocks: every Linear weight in a block, 4 L C T for attention;
    # the classification head runs once per sequence (on the pooled state), not per token
    blocks = sum(m.weight.numel() for m in model.blocks.modules() if isinstance(m, nn.Linear))
    head = model.head.weight.numel()
    assert total.flops_per_token == pytest.approx(
        transformer_flops_per_token(blocks, 2, 16, 8) + 2 * head / 8)
    assert "total" in str(r)


# -- errors ---------------------------------------------------------------------------------
def test_errors_name_the_allowed_values():
    spec = build_circuit(6, 1)
    with pytest.raises(ConfigError, match="ibm_manila"):
        transpiled_counts(spec, "ibm_nowhere")
    with pytest.raises(ConfigError, match="ionq_aria"):
        get_profile("dwave")
    with pytest.raises(SpecError, match=r"needs 6 qubits.*'ibm_manila'.*has 5"):
        transpiled_counts(spec, "ibm_manila")
    model = Hybrid()
    x = torch.rand(1, 3, 5)
    with pytest.raises(ConfigError, match="parameter-shift"):
        cost_report(model, example_input=x, gradient="finite-difference")
    with pytest.raises(ConfigError, match="ibm_torino"):
        cost_report(model, example_input=x, target="torino")
    with pytest.raises(ConfigError, match="ibm_heron"):
        cost_report(model, example_input=x, profile="heron")
    with pytest.raises(ConfigError, match="example_input"):
        cost_report(model, seq_len=4)
    with pytest.raises(ConfigError, match="no QuantumLayer"):
        CostLedger(nn.Linear(2, 2))
    assert set(TARGETS) >= {"ibm_torino", "ibm_manila", "ionq_aria"}
    assert math.isfinite(get_profile("ibm_heron").t_2q)
