"""Compress the circuits of a trained model: prune, quantize, fine-tune, save and load.

>>> import torch
>>> from qllm.config import ModelConfig
>>> from qllm.model import HybridTransformer
>>> model = HybridTransformer(ModelConfig(input_dim=4, n_classes=2, ffn="quantum"))
>>> small, layers = compress_model(model, tol=3.2e-1, bits=3)
>>> sorted(layers) == ["blocks.0.ffn.vqc", "blocks.1.ffn.vqc"]
True
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from tqdm.auto import tqdm

from qllm.compress.prune import PruneResult, canonical_ops, check_tolerance, emit, simplify
from qllm.compress.quantize import attach_ste, check_bits, detach_ste, quantize_ops
from qllm.errors import CheckpointError, ConfigError
from qllm.spec import CircuitSpec, Op, Param
from qllm.validate import is_int


def compress_spec(spec: CircuitSpec, weights: torch.Tensor, tol: float | None = None,
                  bits: int | None = None) -> PruneResult:
    """Quantize (``bits``), then prune (``tol``) and merge until nothing changes.

    Args:
        spec / weights: a trained circuit and its weights ``[spec.n_weights]``.
        tol: pruning tolerance in radians, [0, π]; None: prune only what quantization made an
            exact identity (when ``bits`` is set) or nothing.
        bits: angle bits, 1..16; None: no quantization.

    Returns:
        a PruneResult whose ``error_bound`` bounds the change of every expectation value.
    """
    if tol is not None:
        tol = check_tolerance(tol)
    if bits is not None:
        check_bits(bits)
    result = PruneResult(spec, weights, ops_before=len(spec.ops))
    ops = canonical_ops(spec, weights)
    if bits is not None:
        ops = quantize_ops(ops, bits, result)
    ops = simplify(ops, tol if tol is not None else (0.0 if bits is not None else None), result)
    result.spec, result.weights = emit(ops, spec, weights.dtype)
    return result


def quantum_layers(model: nn.Module) -> dict:
    """``{qualified name: QuantumLayer}``; a model without any raises ConfigError."""
    from qllm.quantum_layer import QuantumLayer

    layers = {n: m for n, m in model.named_modules() if isinstance(m, QuantumLayer)}
    if not layers:
        raise ConfigError("the model has no quantum layers: nothing to compress (train one with "
                          "attn=quantum or ffn=quantum)")
    return layers


def install(layer, spec: CircuitSpec, weights: torch.Tensor) -> None:
    """Give a QuantumLayer a new circuit and weights (same device and dtype as before)."""
    old = layer.weights
    layer.spec = spec
    layer.weights = nn.Parameter(weights.to(old.device, old.dtype))


def compress_model(model: nn.Module, tol: float | None = None, bits: int | None = None,
                   qat_steps: int = 0, task=None, lr: float = 1e-3, seed: int = 0,
                   batch_size: int = 32, progress: bool = False) -> tuple[nn.Module, dict]:
    """A compressed copy of ``model`` (the original is untouched).

    Args:
        model: a trained model with QuantumLayers.
        tol / bits: as for ``compress_spec``.
        qat_steps: quantization-aware fine-tuning steps (needs ``bits`` and ``task``): prune,
            then train every parameter with the circuits' angles rounded by a straight-through
            estimator, then quantize and prune again.
        task: a TaskData for fine-tuning.
        lr / seed / batch_size: the fine-tuning optimizer's rate, its data order seed, batch.

    Returns:
        ``(compressed model, {layer name: PruneResult})``.
    """
    if not is_int(qat_steps) or qat_steps < 0:
        raise ConfigError(f"qat_steps must be an int >= 0, got {qat_steps!r}")
    if qat_steps and (bits is None or task is None):
        raise ConfigError("qat_steps > 0 needs bits (the grid to train on) and a task")
    from qllm.quantum_layer import release_unshared

    out = copy.deepcopy(model)
    layers = quantum_layers(out)
    if qat_steps:
        for layer in layers.values():
            res = compress_spec(layer.spec, layer.weights, tol, None)
            install(layer, res.spec, res.weights)
            attach_ste(layer, bits)
        release_unshared(out)
        finetune(out, task, qat_steps, lr, seed, batch_size, progress)
        for layer in layers.values():
            detach_ste(layer)
    results = {}
    for name, layer in layers.items():
        res = compress_spec(layer.spec, layer.weights, tol, bits)
        install(layer, res.spec, res.weights)
        results[name] = res
    release_unshared(out)  # each layer now owns its (pruned) weights
    return out, results


def finetune(model: nn.Module, task, steps: int, lr: float = 1e-3, seed: int = 0,
             batch_size: int = 32, progress: bool = False) -> list[float]:
    """``steps`` AdamW steps on the task's training split (seeded order); returns the losses."""
    if not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
        raise ConfigError(f"lr must be a finite number > 0, got {lr!r}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="quantization-aware fine-tuning", disable=not progress,
                  leave=False):
        idx = torch.randint(len(task.x_train), (batch_size,), generator=g)
        _, loss = model(task.x_train[idx].to(device), task.y_train[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


# -- checkpoints ----------------------------------------------------------------------------
def spec_to_dict(spec: CircuitSpec) -> dict:
    """Plain values only, so the checkpoint loads with ``weights_only=True``."""
    return {"n_qubits": spec.n_qubits, "observables": list(spec.observables),
            "n_inputs": spec.n_inputs, "n_weights": spec.n_weights, "name": spec.name,
            "ops": [[op.gate, list(op.wires),
                     [[p.kind, list(p.indices), p.value, p.scale] for p in op.params]]
                    for op in spec.ops]}


def spec_from_dict(d: dict) -> CircuitSpec:
    def param(kind, idx, value, scale):
        index = idx[0] if len(idx) == 1 else tuple(idx)
        return Param(kind, index if kind != "const" else 0, value, scale)

    ops = tuple(Op(g, tuple(wires), tuple(param(*p) for p in params))
                for g, wires, params in d["ops"])
    return CircuitSpec(d["n_qubits"], ops, tuple(d["observables"]), d["n_inputs"],
                       d["n_weights"], d.get("name", ""))


def save_compressed(path, model: nn.Module, train_config: dict, settings: dict) -> None:
    """A checkpoint ``qllm.compress.load_compressed`` reads: the state, the configs and every
    compressed circuit."""
    from qllm.checkpoint import save_checkpoint
    from qllm.results import versions

    specs = {name: spec_to_dict(layer.spec) for name, layer in quantum_layers(model).items()}
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model.config.to_dict(),
                           "train_config": train_config, "compressed_specs": specs,
                           "compression": settings, "versions": versions()})


def load_compressed(path):
    """``(model, TrainConfig)`` from a plain or a compressed checkpoint."""
    from qllm.checkpoint import load_checkpoint
    from qllm.config import ModelConfig, TrainConfig
    from qllm.model import HybridTransformer

    state = load_checkpoint(path, require=("model", "model_config", "train_config"))
    model = HybridTransformer(ModelConfig.from_dict(state["model_config"]))
    layers = dict(model.named_modules())
    for name, d in state.get("compressed_specs", {}).items():
        try:
            spec = spec_from_dict(d)
            install(layers[name], spec, torch.zeros(spec.n_weights))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"checkpoint {str(path)!r}: compressed circuit {name!r} does "
                                  f"not fit the model ({type(e).__name__}: {e})") from None
    try:
        model.load_state_dict(state["model"])
        return model, TrainConfig.from_dict(state["train_config"])
    except (RuntimeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match its model config: "
                              f"{str(e).splitlines()[0][:300]}") from None
