"""The adapter cost report against the circuits the engine actually runs: every quantum adapter
is switched to parameter-shift gradients, one real training step (forward + backward) and one
inference forward are counted by the backends' execution counters, and the report's
executions, jobs, shots and QPU seconds per step, per run and at inference must match them.
Classical adapters report no circuit site and no QPU time."""

from __future__ import annotations

import pytest
import torch

from qllm.cost import get_profile
from qllm.pretrained import build, load_backbone
from qllm.pretrained.adapters import ADAPTERS, QUANTUM_ADAPTERS
from qllm.pretrained.cost import adapter_cost, input_free_sites
from qllm.pretrained.inputs import pooled_features
from qllm.quantum_layer import QuantumLayer, use_backend

pytest.importorskip("peft")
pytestmark = pytest.mark.usefixtures("one_thread")

B, T, SHOTS, STEPS_PER_EPOCH, EPOCHS = 3, 6, 1024, 2, 3
TEXTS = ["the cook bakes fresh bread for dinner tonight", "an engineer writes and debugs code",
         "the chef runs a new program in the kitchen"]
LABELS = torch.tensor([0, 1, 2])


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("minilm")


def _model(minilm, adapter):
    torch.manual_seed(0)
    return build(minilm, adapter, 3, n_qubits=3, n_layers=1, rank=2)


def _inputs(minilm, model):
    ids, mask = minilm.tokenize(TEXTS, T)
    assert bool(mask.all())  # every position a real token, as in the report's dry run
    return (pooled_features(minilm, ids, mask),) if model.head_only else (ids, mask)


def _layers(model):
    return [m for m in model.modules() if isinstance(m, QuantumLayer)]


def _counted(layers):
    return (sum(m.backend.stats.circuits for m in layers),
            sum(m.backend.stats.jobs for m in layers))


def _reset(layers):
    for m in layers:
        m.backend.stats.reset()


@pytest.mark.parametrize("adapter", QUANTUM_ADAPTERS)
def test_report_matches_the_circuits_a_real_step_and_forward_run(minilm, adapter):
    model = _model(minilm, adapter)
    cost = adapter_cost(model, minilm, seq_len=T, batch_size=B, shots=SHOTS,
                        steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    heron = cost["qpu"]["ibm_heron"]
    layers = _layers(model)
    assert len(cost["sites"]) == len(layers) > 0
    assert all(r["measurement_settings"] == 1 for r in cost["report"]["quantum"])  # Z only
    use_backend(model, "torch", gradient="parameter-shift")
    forward = model.head if model.head_only else model
    x = _inputs(minilm, model)

    _reset(layers)
    torch.nn.functional.cross_entropy(forward(*x), LABELS).backward()
    circuits, jobs = _counted(layers)
    step = heron["per_step"]
    assert step["executions"] == circuits and step["jobs"] == jobs
    assert step["shots"] == circuits * SHOTS
    profile = get_profile("ibm_heron")
    shot_s = cost["report"]["quantum"][0]["shot_seconds"]["ibm_heron"]
    assert step["qpu_seconds"] == pytest.approx(circuits * SHOTS * shot_s
                                                + jobs * profile.job_latency)
    run = heron["per_run"]
    assert run["executions"] == circuits * STEPS_PER_EPOCH * EPOCHS
    assert run["qpu_seconds"] == pytest.approx(step["qpu_seconds"] * STEPS_PER_EPOCH * EPOCHS)

    _reset(layers)
    with torch.no_grad():
        forward(*x)
    circuits, jobs = _counted(layers)
    if adapter == "quantum_prompt":
        # the prompts depend on no text: computed once, reused for every text after that
        assert cost["sites"][0]["input_free"] and cost["sites"][0]["circuits_per_forward"] == 2
        assert circuits == 2 and heron["inference_once"]["executions"] == circuits
        assert heron["inference_once"]["jobs"] == jobs
        assert heron["per_inference_token"]["executions"] == 0
        assert heron["per_inference_token"]["qpu_seconds"] == 0
    else:
        assert not any(s["input_free"] for s in cost["sites"])
        assert "inference_once" not in heron
        assert heron["per_inference_token"]["executions"] * B * T == pytest.approx(circuits)


def test_quantum_prompt_step_costs_the_same_for_any_batch(minilm):
    """The old report charged the prompt circuits once per text: 16x too many at batch 16."""
    model = _model(minilm, "quantum_prompt")
    small, large = (adapter_cost(model, minilm, seq_len=T, batch_size=b)["qpu"]["ibm_heron"]
                    for b in (1, 16))
    assert small["per_step"] == large["per_step"]
    # parameter shift of 2 parameter sets: 1 + 2 x (3 angle gates + 6 weight gates) each
    assert large["per_step"]["executions"] == 2 * (1 + 2 * (3 + 6))
    assert input_free_sites(model, minilm, T) == ["encoder.generator.vqc"]
    assert input_free_sites(_model(minilm, "quantum_lora"), minilm, T) == []


@pytest.mark.parametrize("adapter", sorted(set(ADAPTERS) - set(QUANTUM_ADAPTERS)))
def test_classical_adapters_report_no_circuits(minilm, adapter):
    model = _model(minilm, adapter)
    cost = adapter_cost(model, minilm, seq_len=T, batch_size=B)
    assert cost["sites"] == [] and cost["qpu"] == {} and not _layers(model)
    assert cost["params"]["circuit_weights"] == 0
