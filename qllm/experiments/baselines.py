"""Classical baselines for a hybrid model: width-matched (same shape, classical sublayers) and
parameter-matched (a classical model whose parameter count is within a tolerance of the hybrid's).

A quantum FFN replaces ``n_embd * mlp_ratio * n_embd * 2`` weights by two thin projections and a
few circuit angles, so a hybrid has far fewer parameters than the classical model of the same
width. Comparing only against the width-matched model flatters the classical side on accuracy and
the quantum side on parameters; the parameter-matched model answers "is a circuit worth as much as
the same number of classical weights?".

>>> from qllm.config import ModelConfig
>>> hybrid = ModelConfig(input_dim=4, n_classes=10, ffn="quantum")
>>> fields = {"task": "classify", "block_size": 16, "input_dim": 4, "vocab_size": None,
...           "n_classes": 10}
>>> base, info = param_matched(hybrid, fields)
>>> abs(info["rel_diff"]) <= 0.10
True
"""

from __future__ import annotations

from functools import cache

from qllm.config import ModelConfig
from qllm.errors import ConfigError

DEFAULT_TOLERANCE = 0.10  # parameter-matched means within 10% of the hybrid's count


@cache
def _task_fields_cached(task: str, options_key: tuple) -> tuple:
    from qllm.data import load_task

    return tuple(sorted(load_task(task, **dict(options_key)).model_fields().items()))


def task_fields(task: str, options: dict | None = None) -> dict:
    """The ModelConfig fields a task fixes (input kind, classes, sequence length); cached.

    Args:
        task: a name in ``qllm.data.TASKS``.
        options: the task's options (e.g. ``{"path": "corpus.txt"}``).
    Returns:
        dict of ModelConfig field -> value.
    """
    key = tuple(sorted((options or {}).items()))
    return dict(_task_fields_cached(task, key))


def param_count(cfg: ModelConfig, fields: dict | None = None) -> int:
    """Trainable parameters of the model ``cfg`` describes (with the task's fields filled in).
    Builds the model on the CPU; quantum layers only build their (small) circuit specs."""
    from qllm.model import HybridTransformer

    if fields:
        cfg = cfg.override(fields)
    return HybridTransformer(cfg).num_params()


def classical_param_count(cfg: ModelConfig, fields: dict | None = None) -> int:
    """Parameters of an all-classical model, by formula (fast enough to search over shapes;
    ``tests/test_baselines.py`` checks it against the built model)."""
    if fields:
        cfg = cfg.override(fields)
    if any(k != "classical" for i in range(cfg.n_layer) for k in cfg.block_kinds(i)):
        raise ConfigError("classical_param_count needs attn='classical' and ffn='classical'")
    C, H = cfg.n_embd, cfg.mlp_ratio * cfg.n_embd
    embed = cfg.vocab_size * C if cfg.vocab_size is not None else (cfg.input_dim + 1) * C
    block = 4 * C + (4 * C * C + 4 * C) + (2 * C * H + H + C)  # 2 norms, attention, MLP
    out = cfg.vocab_size if cfg.task == "lm" else cfg.n_classes
    return embed + cfg.block_size * C + cfg.n_layer * block + 2 * C + (C + 1) * out


def width_matched(hybrid: ModelConfig) -> ModelConfig:
    """The same transformer with every sublayer classical (same n_embd, n_head, n_layer,
    mlp_ratio)."""
    return hybrid.override({"attn": "classical", "ffn": "classical"})


def param_matched(hybrid: ModelConfig, fields: dict | None = None,
                  tolerance: float = DEFAULT_TOLERANCE, max_embd: int = 256,
                  max_mlp_ratio: int = 8) -> tuple[ModelConfig, dict]:
    """A classical model whose parameter count is within ``tolerance`` of the hybrid's, varying
    ``n_embd`` (multiples of ``n_head``) and ``mlp_ratio`` with ``n_layer`` and ``n_head`` fixed.
    Among the models within the tolerance, the one whose ``mlp_ratio`` is nearest the hybrid's
    wins (an ordinary transformer shape), then the one with the nearest count.

    Args:
        hybrid: the hybrid model's config.
        fields: the task's fields (``task_fields(task, options)``); None if ``hybrid`` has them.
        tolerance: the largest allowed ``|classical - hybrid| / hybrid``.
        max_embd / max_mlp_ratio: the search range.
    Returns:
        (classical config, info) with info = {"target_params", "params", "rel_diff",
        "within_tolerance", "tolerance"}.
    Raises:
        ConfigError: no classical model in the range is within the tolerance.
    """
    if not 0 < tolerance < 1:
        raise ConfigError(f"tolerance must be in (0, 1), got {tolerance!r}")
    target = param_count(hybrid, fields)
    best = None
    for n_embd in range(hybrid.n_head, max_embd + 1, hybrid.n_head):
        for ratio in range(1, max_mlp_ratio + 1):
            cand = width_matched(hybrid).override({"n_embd": n_embd, "mlp_ratio": ratio})
            n = classical_param_count(cand, fields)
            rel = abs(n - target) / target
            key = (rel > tolerance, abs(ratio - hybrid.mlp_ratio) if rel <= tolerance else 0,
                   abs(n - target), -n_embd)
            if best is None or key < best[0]:
                best = (key, cand, n)
            if n > 2 * target:
                break  # larger ratios only grow the count
    _, cfg, n = best
    rel = (n - target) / target
    if abs(rel) > tolerance:
        raise ConfigError(f"no classical model with n_embd <= {max_embd}, mlp_ratio <= "
                          f"{max_mlp_ratio} is within {tolerance:.0%} of {target} parameters "
                          f"(closest: {n}, {rel:+.1%})")
    return cfg, {"target_params": target, "params": n, "rel_diff": rel,
                 "within_tolerance": abs(rel) <= tolerance, "tolerance": tolerance}
