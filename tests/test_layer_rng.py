"""Private generators travel in QuantumLayer.state_dict(): the reference is the layer's own
continuation (what it draws next), which a twin loaded from the saved state must repeat.

- every backend / gradient kind: shot sampler, SPSA directions, Aer job seeds (with and without
  a mitigated route), IBM job seeds, PennyLane generators the caller passed;
- the state survives torch.save / torch.load(weights_only=True);
- a layer without generators keeps an all-tensor state dict; a weights-only dict still loads;
- seeds follow qllm.rng.derived_seed of the layer's name; a shared backend is seeded once;
- checkpoints of the earlier, path-keyed layout resume exactly; unknown paths are refused.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from qllm.checkpoint import load_checkpoint, save_checkpoint
from qllm.circuits import build_circuit
from qllm.config import ModelConfig, TrainConfig
from qllm.errors import CheckpointError
from qllm.layer_rng import rng_states, seed_layers, upgrade_generators
from qllm.quantum_layer import QuantumLayer
from qllm.rng import derived_seed
from tests.resume_helpers import Crash, assert_same_state, crash_after_step

pytestmark = pytest.mark.usefixtures("one_thread")

LAYERS = {
    "torch shots + spsa": ("torch", {"shots": 16}, "spsa"),
    "aer shots": ("aer", {"shots": 16}, "parameter-shift"),
    "aer mitigated": ("aer:fake_manila", {"shots": 64, "mitigation": "readout"}, "spsa"),
    "ibm fake": ("ibm:fake_manila", {"shots": 32}, "spsa"),
}


def _layer(kind: str) -> QuantumLayer:
    backend, options, gradient = LAYERS[kind]
    return QuantumLayer(build_circuit(2, 1), backend, gradient=gradient, **options).double()


def _step(layer: QuantumLayer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and input gradients of one forward + backward (draws from every generator)."""
    x = x.clone().requires_grad_(True)
    out = layer(x)
    out.sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_twin_loaded_from_the_state_dict_draws_what_the_layer_draws_next(kind):
    x = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    layer = _layer(kind)
    _step(layer, x)  # the shot sampler makes its generator on first use
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    expected = _step(layer, x)
    twin = _layer(kind)  # seeded at random: only the loaded state can make it agree
    assert not all(torch.equal(a, b) for a, b in zip(_step(twin, x), expected))
    twin.load_state_dict(saved)
    for got, want in zip(_step(twin, x), expected):
        assert torch.equal(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_sampler_state_loaded_onto_the_gpu_is_restored():
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(1)).cuda()
    layer = QuantumLayer(build_circuit(2, 1), shots=16, gradient="spsa").cuda()
    with torch.no_grad():
        layer(x)
        buffer = io.BytesIO()
        torch.save(layer.state_dict(), buffer)
        buffer.seek(0)
        saved = torch.load(buffer, map_location="cuda", weights_only=True)
        assert list(saved["_extra_state"]["backend"]["sampler"]) == ["cuda:0"]
        expected = layer(x)
        twin = QuantumLayer(build_circuit(2, 1), shots=16, gradient="spsa").cuda()
        twin.load_state_dict(saved)
        assert torch.equal(twin(x), expected)


def test_pennylane_generators_passed_by_the_caller_are_carried():
    x = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    layer = QuantumLayer(build_circuit(2, 1), "pennylane:default.qubit", shots=20,
                         seed=np.random.default_rng(3)).double()
    saved = layer.state_dict()
    assert list(saved["_extra_state"]["backend"]) == ["device_options.seed"]
    with torch.no_grad():
        first = layer(x)
        layer.load_state_dict(saved)
        assert torch.equal(layer(x), first)


def test_a_layer_without_generators_keeps_an_all_tensor_state_dict():
    exact = QuantumLayer(build_circuit(2, 1))
    assert list(exact.state_dict()) == ["weights"]
    shots = QuantumLayer(build_circuit(2, 1), shots=16, gradient="spsa", spsa_seed=4)
    before = shots.get_extra_state()
    shots.load_state_dict(exact.state_dict())  # weights only: generators left as they were
    assert torch.equal(shots.weights, exact.weights)
    assert_same_state(shots.get_extra_state(), before)
    exact.load_state_dict(shots.state_dict())  # and back: the SPSA state has no owner there
    assert list(exact.state_dict()) == ["weights"]


def test_bad_extra_state_is_refused():
    layer = QuantumLayer(build_circuit(2, 1), gradient="spsa")
    with pytest.raises(CheckpointError, match="_extra_state"):
        layer.load_state_dict({"weights": layer.weights.detach(), "_extra_state": [1, 2]})


def test_seeds_follow_the_layer_name_and_a_shared_backend_is_seeded_once():
    model = torch.nn.ModuleDict({
        "a": QuantumLayer(build_circuit(2, 1), shots=8, gradient="spsa"),
        "b": QuantumLayer(build_circuit(2, 1), shots=8, gradient="spsa")})
    model["a"](torch.rand(2, 2))
    seed_layers(model, 7)
    for name in ("a", "b"):
        layer = model[name]
        assert layer.gradient_fn.generator.initial_seed() == derived_seed(7, f"{name}.gradient_fn")
        assert layer.backend.measurement.seed == derived_seed(7, f"{name}.backend.measurement")
    assert model["a"].backend.measurement.generator(torch.device("cpu")).initial_seed() == \
        derived_seed(7, "a.backend.measurement")
    shared = QuantumLayer(build_circuit(2, 1), "aer", shots=8).backend
    for name in ("a", "b"):
        model[name].backend = shared
    seed_layers(model, 7)
    assert shared.seed == derived_seed(7, "a.backend")


# -- checkpoints of the earlier layout ---------------------------------------------------------
def _old_layout(states: dict) -> dict:
    """The path-keyed ``"generators"`` dict earlier versions wrote for these layer states
    (the paths of their attribute walk, as in checkpoints they left)."""
    old = {}
    for name, state in states.items():
        at = name or "<root>"
        backend, gradient = state["backend"], state["gradient"]
        if "directions" in gradient:
            old[f"{at}.gradient_fn.generator"] = {"torch": gradient["directions"], "device": "cpu"}
        for device, t in backend.get("sampler", {}).items():
            old[f"{at}.backend.measurement._generators[{device}]"] = {"torch": t, "device": device}
        for entry, path in (("jobs", "backend._rng"), ("mitigated", "backend.mitigated._rng"),
                            ("route", "backend.route._rng")):
            if entry in backend:
                old[f"{at}.{path}"] = {"numpy": backend[entry]}
    return old


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_every_old_generator_path_maps_to_its_layer_state(kind):
    layer = _layer(kind)
    _step(layer, torch.rand(2, 2, dtype=torch.float64))
    new = rng_states(layer)
    assert_same_state(upgrade_generators(_old_layout(new), "old.pt"), new)


def test_an_old_path_that_maps_nowhere_is_refused_naming_the_checkpoint():
    with pytest.raises(CheckpointError, match="old.pt.*train again"):
        upgrade_generators({"blocks.0.ffn.vqc.backend.cache": {"numpy": {}}}, "old.pt")


def test_a_checkpoint_of_the_earlier_layout_resumes_exactly(tmp_path, monkeypatch):
    import qllm.train as T

    model = ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1, ffn="quantum",
                        quantum={"n_qubits": 2, "n_layers": 1, "gradient": "spsa",
                                 "backend_options": {"shots": 16}})
    cfg = TrainConfig(task="parity", task_options={"n": 60, "seq_len": 4}, batch_size=8,
                      epochs=2, max_steps=8, checkpoint_every=3, progress=False, seed=2)
    whole = T.train(model, cfg, out_dir=tmp_path / "whole")
    with monkeypatch.context() as patched:
        crash_after_step(patched, T, 3)
        with pytest.raises(Crash):
            T.train(model, cfg, out_dir=tmp_path / "split")
    path = tmp_path / "split" / "checkpoint.pt"
    state = load_checkpoint(path)
    extra = {k[:-len("._extra_state")]: v for k, v in state["model"].items()
             if k.endswith("_extra_state")}
    assert extra  # the sampler and the SPSA directions of the FFN's circuit
    state["model"] = {k: v for k, v in state["model"].items() if not k.endswith("_extra_state")}
    state["generators"] = _old_layout(extra)
    save_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
    resumed = T.train(model, cfg, out_dir=tmp_path / "split", resume=True)
    assert resumed["losses"] == whole["losses"]
    assert_same_state(resumed["model"].state_dict(), whole["model"].state_dict())
