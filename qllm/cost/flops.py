"""Classical side of the cost table: parameters and FLOPs per token.

FLOPs follow nanoGPT's convention (karpathy/nanoGPT, ``estimate_mfu``): 2 FLOPs per
multiply-add, matrix products only (biases, norms, softmax and activations are left out), and
attention's T-dependent terms counted in full (causal masking not discounted). For a standard
transformer with N matmul parameters, n_layer layers, width C and context T:

    forward FLOPs per token = 2 N + 4 n_layer C T        (training: 3x, i.e. 6 N + 12 n_layer C T)

``count_flops`` measures the same quantities on any module with ``torch.utils.flop_counter``
(matmuls and ``scaled_dot_product_attention``), per submodule. Work inside a ``QuantumLayer`` is
circuit simulation, not model arithmetic, and is reported apart (see ``report.py``: simulator wall
time), never mixed into the FLOPs.
"""

from __future__ import annotations

import torch
from torch import nn


def transformer_flops_per_token(n_matmul_params: int, n_layer: int, n_embd: int, seq_len: int,
                                training: bool = False) -> int:
    """nanoGPT's analytic FLOPs per token: ``2N + 4 L C T`` forward, three times that to train."""
    fwd = 2 * n_matmul_params + 4 * n_layer * n_embd * seq_len
    return 3 * fwd if training else fwd


def count_params(module: nn.Module, exclude_quantum: bool = False) -> int:
    """Parameters of ``module``; with ``exclude_quantum`` the circuit weights are left out."""
    from qllm.quantum_layer import circuit_parameters

    skip = {id(p) for p in circuit_parameters(module)} if exclude_quantum else set()
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def _custom_formulas() -> dict:
    # On CPU, scaled_dot_product_attention dispatches to an op the flop counter does not know;
    # count it with torch's own SDPA formula (two batched matmuls, full T x T).
    from torch.utils.flop_counter import sdpa_flop_count

    def sdpa_cpu(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    cpu_op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if cpu_op is None else {cpu_op: sdpa_cpu}


def count_flops(model: nn.Module, example_input, forward=None) -> dict[str, int]:
    """Forward FLOPs per submodule (qualified name -> FLOPs; "" is the whole model) for one call
    on ``example_input``, with the FLOPs inside QuantumLayers (simulation) subtracted from every
    enclosing module and reported under ``"<name>#simulation"`` instead.

    Args:
        model: any nn.Module.
        example_input: the input of one forward call (a tensor or a tuple of arguments).
        forward: optional callable ``forward(model, example_input)``; default ``model(x)``.
    The call runs in the caller's grad mode (wrap it in ``torch.no_grad()`` to save memory).

    Returns:
        dict of FLOPs for the whole call (divide by the tokens in ``example_input`` for per-token).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from qllm.quantum_layer import QuantumLayer

    names = {id(m): n for n, m in model.named_modules()}
    root = type(model).__name__
    with FlopCounterMode(display=False, custom_mapping=_custom_formulas()) as fc:
        if forward is not None:
            forward(model, example_input)
        elif isinstance(example_input, tuple):
            model(*example_input)
        else:
            model(example_input)
    raw = {k: sum(v.values()) for k, v in fc.get_flop_counts().items()}
    # flop counter keys: "Global", the root class name, then "Root.child.grandchild"
    flops = {"": raw.get("Global", 0)}
    called = {""}  # containers that are never called (ModuleList, ModuleDict) have no entry
    for name in names.values():
        if name:
            flops[name] = raw.get(f"{root}.{name}", 0)
            if f"{root}.{name}" in raw:
                called.add(name)
    for name, m in model.named_modules():
        if isinstance(m, QuantumLayer):
            sim = flops.get(name, 0) if name else flops[""]
            flops[f"{name}#simulation"] = sim
            for other in called:
                if other == "" or name == other or name.startswith(other + "."):
                    flops[other] -= sim
    return flops
