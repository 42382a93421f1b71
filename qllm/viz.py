"""Drawing and plotting helpers for notebooks: circuit diagrams (through PennyLane's and Qiskit's
own drawers), learning curves, confusion matrices and attention maps.

matplotlib is imported only by the ``plot_*`` functions.

>>> from qllm.circuits import build_circuit
>>> print(draw(build_circuit(2, 1, "angle", "hardware_efficient_real"), style="pennylane"))
0: ──RY──RY─╭●─┤  <Z>
1: ──RY──RY─╰X─┤  <Z>
"""

from __future__ import annotations

import numpy as np
import torch

from qllm.errors import ConfigError, InputError
from qllm.spec import CircuitSpec

STYLES = ("qiskit", "pennylane")


def draw(spec: CircuitSpec, style: str = "qiskit", inputs=None, weights=None,
         decimals: int | None = 2, fold: int | None = None) -> str:
    """A text diagram of a circuit.

    Args:
        spec: the circuit.
        style: "qiskit" (``QuantumCircuit.draw("text")``, angles shown as symbols ``x[i]``,
            ``θ[j]``) or "pennylane" (``qml.draw``; gate names, or angle values when ``inputs`` and
            ``weights`` are given).
        inputs / weights: values ``[n_inputs]`` and ``[n_weights]`` to show (PennyLane style only).
        decimals: digits of the angle values shown (PennyLane style with values).
        fold: line width at which the drawing wraps; None (default) never wraps, so a deep
            circuit reads as one diagram (notebook outputs scroll sideways).

    Returns:
        The diagram as a string (``print`` it).
    """
    if style not in STYLES:
        raise ConfigError(f"style {style!r} is not one of {STYLES}")
    if style == "qiskit":
        return str(spec.to_qiskit().draw("text", fold=-1 if fold is None else fold))
    import pennylane as qml

    show = inputs is not None and weights is not None
    x = torch.as_tensor(inputs if inputs is not None else torch.zeros(spec.n_inputs))
    wts = torch.as_tensor(weights if weights is not None else torch.zeros(spec.n_weights))
    return qml.draw(spec.to_pennylane(), decimals=decimals if show else None,
                    max_length=10**6 if fold is None else fold)(x, wts)


def smooth(values, window: int = 10) -> np.ndarray:
    """Moving average over ``window`` points (shorter at the start), same length as ``values``."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_learning_curves(runs: dict[str, dict], window: int = 10, axes=None):
    """Training loss per step (smoothed) and validation accuracy per epoch of several runs.

    Args:
        runs: ``{label: results}`` with results as returned by ``qllm.train.train``.
        window: moving-average window for the per-step loss.
        axes: two matplotlib axes (default: a new figure).

    Returns:
        The two axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for label, res in runs.items():
        axes[0].plot(smooth(res["losses"], window), label=label)
        hist = res["history"]
        # validation accuracy (results written before the validation split: test accuracy)
        axes[1].plot([h["epoch"] for h in hist],
                     [h.get("val_accuracy", h.get("test_accuracy")) for h in hist], "o-",
                     label=label)
    axes[0].set(xlabel="step", ylabel=f"training loss ({window}-step mean)")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    return axes


@torch.no_grad()
def predictions(model, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Arg-max predictions of a model, in eval mode, batch by batch: ``(N,)`` or ``(N, T)``."""
    was_training = model.training
    model.eval()
    try:
        out = [model(x[i:i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def confusion_matrix(model, task, split: str = "test") -> np.ndarray:
    """Counts ``[n_classes, n_classes]``: row = true class, column = predicted class.

    Args:
        model: a classification HybridTransformer.
        task: the TaskData it was trained on (``kind == "classify"``).
        split: "test" or "train".
    """
    if task.kind != "classify":
        raise InputError(f"confusion_matrix needs a classification task, got {task.name!r} "
                         f"({task.kind})")
    if split not in ("test", "train"):
        raise InputError(f"split must be 'test' or 'train', got {split!r}")
    x, y = (task.x_test, task.y_test) if split == "test" else (task.x_train, task.y_train)
    pred = predictions(model, x).cpu().numpy()
    cm = np.zeros((task.n_classes, task.n_classes), dtype=int)
    np.add.at(cm, (y.cpu().numpy(), pred), 1)
    return cm


def plot_confusion_matrix(cm: np.ndarray, labels=None, ax=None, title: str = ""):
    """``imshow`` of a confusion matrix with the count in every cell."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    n = cm.shape[0]
    labels = list(labels) if labels is not None else [str(i) for i in range(n)]
    ax.imshow(cm, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    return ax


@torch.no_grad()
def attention_maps(model, x: torch.Tensor) -> list[torch.Tensor]:
    """Attention weights of every block: a list over blocks of ``(B, n_head, T, T)``.

    Row i of a map is how much token i reads from each token j (rows sum to 1).
    Works for classical, quantum and QSANN mixers.
    """
    # The model's own forward runs; a pre-hook on each block's mixer catches its (normed) input.
    inputs: list[torch.Tensor] = []
    hooks = [block.mixer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
             for block in model.blocks]
    was_training = model.training
    model.eval()
    try:
        model(x)
        maps = []
        for block, h in zip(model.blocks, inputs):
            att = block.mixer.attention_maps(h)
            maps.append(att[0] if isinstance(att, tuple) else att)  # QSANN also returns angles
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return maps


def plot_attention(maps: torch.Tensor, tokens=None, axes=None, title: str = "",
                   colorbar: bool = True):
    """One ``imshow`` per head of a single example's maps ``(n_head, T, T)`` (or ``(T, T)``),
    on one colour scale [0, 1] with a shared colorbar.

    Args:
        maps: attention weights of one example.
        tokens: labels of the T positions (strings), shown on both axes.
        axes: matplotlib axes, one per head (default: a new row of subplots).
        colorbar: add one colorbar "attention weight" beside the heads.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    m = torch.as_tensor(maps).detach().cpu()
    m = m[None] if m.dim() == 2 else m
    if m.dim() != 3:
        raise InputError(f"maps must be (n_head, T, T) or (T, T), got {tuple(m.shape)}")
    if axes is None:
        _, axes = plt.subplots(1, m.shape[0], figsize=(3.2 * m.shape[0] + 0.8, 3.4),
                               squeeze=False, layout="constrained")
        axes = axes[0]
    T = m.shape[-1]
    image = None
    for h, ax in enumerate(axes):
        image = ax.imshow(m[h].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set(title=f"{title} head {h}".strip(), xlabel="attends to", ylabel="token")
        if tokens is not None:
            ax.set(xticks=range(T), yticks=range(T))
            ax.set_xticklabels(tokens, rotation=90)  # long tokens must not overlap
            ax.set_yticklabels(tokens)
    if colorbar and image is not None:
        axes[0].figure.colorbar(image, ax=list(axes), label="attention weight", shrink=0.85)
    return axes


__all__ = ["draw", "smooth", "plot_learning_curves", "predictions", "confusion_matrix",
           "plot_confusion_matrix", "attention_maps", "plot_attention"]
