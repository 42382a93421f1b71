"""qllm.viz: attention maps must reproduce each mixer's own output, the confusion matrix must match
scikit-learn's, and the drawings must come from the PennyLane/Qiskit drawers."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from qllm import viz
from qllm.circuits import build_circuit
from qllm.config import ModelConfig, QuantumConfig
from qllm.data import load_task
from qllm.errors import ConfigError, InputError
from qllm.model import HybridTransformer

matplotlib.use("Agg")


def values_from_maps(mixer, h, att):
    """The mixer's output rebuilt from attention weights and its value path."""
    B, T, C = h.shape
    if hasattr(mixer, "qkv"):  # classical
        v = mixer.qkv(h).split(C, dim=2)[2].view(B, T, mixer.n_head, -1).transpose(1, 2)
    else:  # quantum: value VQCs are the last n_head of q, k, v per head
        angles = mixer.down(h).view(B, T, 3 * mixer.n_head, -1)
        v = torch.stack([mixer.vqcs[2 * mixer.n_head + i](angles[:, :, 2 * mixer.n_head + i])
                         for i in range(mixer.n_head)], 2).transpose(1, 2)  # (B, nh, T, hs)
    y = att @ v  # (B, nh, T, hs)
    return mixer.proj(y.transpose(1, 2).reshape(B, T, -1))


@pytest.mark.parametrize("attn,task", [("classical", "classify"), ("classical", "lm"),
                                       ("quantum", "lm")])
def test_attention_maps_reproduce_the_mixer(attn, task):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, task=task, n_embd=8, n_head=2, n_layer=2, attn=attn,
                      quantum=QuantumConfig(n_qubits=2, n_layers=1))
    model = HybridTransformer(cfg)
    x = torch.randint(0, 5, (3, 6))
    maps = viz.attention_maps(model, x)
    assert len(maps) == 2 and maps[0].shape == (3, 2, 6, 6)
    assert torch.allclose(maps[1].sum(-1), torch.ones(3, 2, 6), atol=1e-5)
    if task == "lm":  # causal: nothing above the diagonal
        assert float(maps[0].triu(1).abs().max()) == 0.0
    with torch.no_grad():
        h = model.embed(x) + model.pos(torch.arange(6))
        mixer = model.blocks[0].mixer
        normed = model.blocks[0].norm1(h)
        assert torch.allclose(values_from_maps(mixer, normed, maps[0]), mixer(normed), atol=1e-5)


def test_qsann_maps_are_probabilities():
    cfg = ModelConfig(vocab_size=4, n_embd=8, n_head=2, n_layer=1, attn="qsann",
                      quantum=QuantumConfig(n_qubits=2, n_layers=1))
    maps = viz.attention_maps(HybridTransformer(cfg), torch.randint(0, 4, (2, 5)))
    assert maps[0].shape == (2, 2, 5, 5)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 5), atol=1e-5)


def test_confusion_matrix_matches_sklearn():
    task = load_task("parity", n=200, seq_len=4)
    cfg = ModelConfig(**task.model_fields(), n_embd=8, n_head=2, n_layer=1)
    model = HybridTransformer(cfg)
    cm = viz.confusion_matrix(model, task)
    pred = viz.predictions(model, task.x_test).numpy()
    assert (cm == sk_confusion_matrix(task.y_test.numpy(), pred, labels=[0, 1])).all()
    assert cm.sum() == len(task.y_test)
    viz.plot_confusion_matrix(cm, labels=["even", "odd"])


def test_confusion_matrix_rejects_lm_tasks():
    task = load_task("sort", n=50, length=3)
    model = HybridTransformer(ModelConfig(**task.model_fields(), n_embd=8, n_head=2, n_layer=1))
    with pytest.raises(InputError, match="classification"):
        viz.confusion_matrix(model, task)


def test_draw_styles():
    spec = build_circuit(2, 1, "angle", "hardware_efficient")
    text = viz.draw(spec)
    assert "x[0]" in text and "θ[0]" in text  # Qiskit's symbolic parameters
    values = viz.draw(spec, "pennylane", torch.tensor([0.5, 0.25]), torch.zeros(4))
    assert "RY(0.50)" in values and "RY(0.25)" in values
    with pytest.raises(ConfigError, match="style"):
        viz.draw(spec, "ascii")


def test_smooth_is_a_running_mean():
    v = np.arange(6.0)
    assert np.allclose(viz.smooth(v, 2), [0, 0.5, 1.5, 2.5, 3.5, 4.5])
    assert np.allclose(viz.smooth(v, 1), v)


def test_plots_draw_what_they_are_given():
    runs = {"a": {"losses": [3.0, 2.0, 1.0], "history": [{"epoch": 1, "test_accuracy": 0.5}]}}
    loss_ax, acc_ax = viz.plot_learning_curves(runs, window=2)
    assert list(loss_ax.lines[0].get_ydata()) == [3.0, 2.5, 1.5]
    assert list(acc_ax.lines[0].get_ydata()) == [0.5]
    axes = viz.plot_attention(torch.eye(3).expand(2, 3, 3), tokens=["a", "b", "c"])
    assert len(axes) == 2 and (axes[1].images[0].get_array() == np.eye(3)).all()
    with pytest.raises(InputError, match="maps must be"):
        viz.plot_attention(torch.zeros(1, 2, 3, 3))


def test_attention_plot_has_one_colorbar_on_the_0_1_scale():
    axes = viz.plot_attention(torch.eye(4).expand(2, 4, 4), tokens=["a", "bb", "ccc", "dddd"])
    fig = axes[0].figure
    bars = [ax for ax in fig.axes if ax not in list(axes)]
    assert len(bars) == 1 and bars[0].get_ylabel() == "attention weight"
    assert bars[0].get_ylim() == (0.0, 1.0)
    assert all(ax.images[0].get_clim() == (0, 1) for ax in axes)
    assert len(viz.plot_attention(torch.eye(3), colorbar=False)[0].figure.axes) == 1


def test_drawing_does_not_wrap_unless_asked():
    from qllm.circuits import build_circuit

    spec = build_circuit(3, 6, "angle", "strongly_entangling")  # wider than 80 columns
    qc = spec.to_qiskit()
    assert viz.draw(spec) == str(qc.draw("text", fold=-1))
    lines = viz.draw(spec).splitlines()
    assert len(lines) == len(str(qc.draw("text", fold=-1)).splitlines())
    assert max(len(line) for line in lines) > 80  # one diagram, not folded at 80
    assert viz.draw(spec, fold=60) == str(qc.draw("text", fold=60))
    wide = viz.draw(spec, style="pennylane")
    assert len(wide.splitlines()) == 3  # one line per wire (PennyLane folds at 100 by default)


def _html_tables(html: str) -> list[list[list[str]]]:
    """Every <table> of an HTML string as rows of cell texts (stdlib parser)."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1][-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    p = P()
    p.feed(html)
    return p.tables


def _md_tables(md: str) -> list[list[list[str]]]:
    tables, current = [], None
    for line in md.splitlines():
        if line.startswith("|"):
            if set(line) <= set("|-"):
                continue
            if current is None:
                current = []
                tables.append(current)
            current.append([c.strip() for c in line.strip("|").split(" | ")])
        else:
            current = None
    return tables


def test_cost_report_displays_as_html_tables_with_the_markdown_cells():
    cfg = ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1, ffn="quantum",
                      quantum=QuantumConfig(n_qubits=2, n_layers=1))
    report = HybridTransformer(cfg).cost_report(seq_len=4, shots=100, target="ibm_manila",
                                                gradient="parameter-shift")
    assert report._repr_markdown_() == str(report)
    html = report._repr_html_()
    tables = _html_tables(html)
    assert len(tables) == 3  # quantum sublayers, classical, projection
    assert tables == _md_tables(str(report))  # the same cells as the Markdown tables
    assert all(len(row) == len(t[0]) for t in tables for row in t)
    assert "overflow-x:auto" in html and "white-space:nowrap" in html  # scrolls, never wraps
    assert "<script" not in html and "&lt;https://" in html  # escaped source links
