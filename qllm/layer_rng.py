"""The private generators of a model's quantum layers, one layer at a time.

Each ``QuantumLayer`` asks its backend and gradient for their generator states
(``get_extra_state``) and carries them in ``state_dict()``; this module does what a run needs
across the whole model:

- ``seed_layers``: reseed every layer's generators from the run's seed and the layer's name;
- ``rng_states`` / ``set_rng_states``: the states by layer name, for checkpoints that keep only
  the trainable tensors (``qllm.pretrained.finetune``) rather than the whole state dict;
- ``upgrade_generators``: checkpoints written before layers carried their states kept a
  ``"generators"`` dict keyed by attribute paths (``"blocks.0.ffn.vqc.gradient_fn.generator"``);
  it turns that into per-layer states, so such runs still resume exactly.

>>> from qllm.circuits import build_circuit
>>> from qllm.quantum_layer import QuantumLayer
>>> layer = QuantumLayer(build_circuit(2, 1), gradient="spsa")
>>> sorted(rng_states(layer)[""]["gradient"])
['directions']
"""

from __future__ import annotations

import re

import torch

from qllm.errors import CheckpointError
from qllm.quantum_layer import QuantumLayer

EXTRA_STATE = "_extra_state"  # torch's state_dict key suffix for get_extra_state()


def quantum_layers(module: torch.nn.Module) -> dict[str, QuantumLayer]:
    """Every QuantumLayer in ``module`` by name (``""`` for ``module`` itself)."""
    return {name: m for name, m in module.named_modules() if isinstance(m, QuantumLayer)}


def seed_layers(module: torch.nn.Module, seed: int) -> None:
    """Reseed the private generators of every QuantumLayer in ``module`` (shot samplers, SPSA
    directions, Aer job seeds) from ``seed`` and the layer's name; a backend shared by several
    layers is seeded once."""
    seen: set = set()
    for name, layer in quantum_layers(module).items():
        layer.seed_rng(seed, name or "<root>", seen)


def rng_states(module: torch.nn.Module) -> dict[str, dict]:
    """``{layer name: layer.get_extra_state()}``: tensors and plain values."""
    return {name: layer.get_extra_state() for name, layer in quantum_layers(module).items()}


def set_rng_states(module: torch.nn.Module, states: dict) -> list[str]:
    """Restore ``rng_states``' output; returns the saved layer names this model lacks."""
    layers = quantum_layers(module)
    for name, state in states.items():
        if name in layers:
            layers[name].set_extra_state(state)
    return sorted(set(states) - set(layers))


def state_dict_key(layer_name: str) -> str:
    """Where a layer's generator states sit in its model's state dict."""
    return f"{layer_name}.{EXTRA_STATE}" if layer_name else EXTRA_STATE


# -- checkpoints of the earlier, path-keyed layout -------------------------------------------
# the end of an old path (after the layer's name) -> (part, entry) in get_extra_state()
_OLD_PATHS = [(re.compile(end + "$"), where) for end, where in (
    (r"\.gradient_fn\.generator", ("gradient", "directions")),
    (r"\.backend\._rng", ("backend", "jobs")),
    (r"\.backend\.mitigated\._rng", ("backend", "mitigated")),
    (r"\.backend\.route\._rng", ("backend", "route")),
    (r"\.backend\.measurement\._generators\[(?P<k>.+)\]", ("backend", "sampler")),
    (r"\.backend\.(?P<w>gradient_kwargs|device_options)\[(?P<k>.+)\]", ("backend", None)),
)]


def is_old_layout(generators: dict) -> bool:
    """Whether a checkpoint's ``"generators"`` dict is keyed by attribute paths (older)."""
    return any(isinstance(v, dict) and ("torch" in v or "numpy" in v)
               for v in generators.values())


def upgrade_generators(generators: dict, checkpoint) -> dict[str, dict]:
    """Per-layer states (``rng_states``' layout) from a path-keyed ``"generators"`` dict.

    Raises:
        CheckpointError: naming ``checkpoint``, for a path no layer generator lives at now.
    """
    layers: dict[str, dict] = {}
    for path, saved in generators.items():
        value = saved["torch"] if "torch" in saved else saved["numpy"]
        for pattern, (part, entry) in _OLD_PATHS:
            found = pattern.search(path)
            if found:
                break
        else:
            raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds a generator state at "
                                  f"{path!r}, a layout this version cannot read; train again "
                                  "from the start")
        name = path[:found.start()]
        name = "" if name == "<root>" else name
        state = layers.setdefault(name, {"backend": {}, "gradient": {}})[part]
        if entry == "sampler":
            state.setdefault("sampler", {})[found["k"]] = value
        elif entry is None:  # PennyLane options: "gradient_kwargs.sampler_rng"
            state[f"{found['w']}.{found['k']}"] = value
        else:
            state[entry] = value
    return layers


def with_upgraded_generators(model_state: dict, generators: dict, checkpoint) -> dict:
    """``model_state`` (a state dict) with a path-keyed ``"generators"`` dict moved into it."""
    moved = upgrade_generators(generators, checkpoint)
    return {**model_state, **{state_dict_key(name): s for name, s in moved.items()}}
