"""Benchmark figures are publication figures: PDF (vector) beside 300 dpi PNG, fonts of at least
8 pt, one colour per model in every panel, error bars inside [0, 100]%, readable log ticks,
human time units, legends outside the plots, and learning curves that never show the test set."""

from __future__ import annotations

import random

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.text import Text
from PIL import Image

from qllm.experiments import plot_style, plots
from qllm.experiments.aggregate import aggregate

matplotlib.use("Agg")

MODELS = {  # label -> (family, params, QPU seconds per epoch)
    "classical-width": ("classical-width", 26_474, 0.0),
    "classical-params~qffn-he-4q": ("classical-params", 10_790, 0.0),
    "qffn-he-4q": ("hybrid", 10_386, 4.9e5),
    "qattn-he-4q": ("hybrid", 11_020, 2.2e6),
}


def record(task: str, label: str, seed: int, acc: float, val: bool = False) -> dict:
    family, params, qpu = MODELS[label]
    rng = random.Random(f"{task}{label}{seed}")
    steps, epochs = 5, 4
    losses = [2.0 / (1 + 0.3 * i) + 0.05 * rng.random() for i in range(steps * epochs)]
    history = [{"epoch": e + 1, "step": (e + 1) * steps, "train_loss": losses[(e + 1) * steps - 1],
                "test_accuracy": 0.5, "test_loss": 1.0} for e in range(epochs)]
    if val:
        for e, h in enumerate(history):
            h["val_accuracy"] = acc * (e + 1) / epochs
    job = {"task": task, "label": label, "family": family, "seed": seed,
           "run_id": f"{task}-{label}-seed{seed}".replace("~", "-"),
           "variant": {"ffn": "quantum", "n_qubits": 4} if family == "hybrid" else None,
           "param_baseline": "classical-params~qffn-he-4q" if family == "hybrid" else None}
    return {"job": job, "metric": "accuracy", "final": {"accuracy": acc, "loss": 1 - acc},
            "params": {"total": params, "quantum": 32 if family == "hybrid" else 0},
            "model_config": {"n_embd": 32, "mlp_ratio": 4}, "train_config": {"epochs": epochs},
            "wall_time_s": 3.0 + seed, "history": history, "losses": losses,
            "cost": {"ledger": {"qubits": 4 if qpu else 0, "qpu_seconds_per_epoch": qpu}}}


def records(val: bool = False) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for task in ("digits", "meaning"):
        for label in MODELS:
            # accuracies near 100% with a wide spread: mean + std would pass 100%
            accs = [1.0, 1.0, 0.86] if label == "qffn-he-4q" else rng.uniform(0.8, 0.99, 3)
            out += [record(task, label, s, float(a), val) for s, a in enumerate(accs)]
    return out


def draw_all(out, recs) -> dict:
    """Run ``plot_all`` once and keep every figure it writes (by file stem), for inspection."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    kept = {}
    save = plot_style.save

    def keep(fig, stem):
        kept[stem.name] = fig
        return save(fig, stem)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plot_style, "save", keep)
        paths = plots.plot_all(out, aggregate(recs), recs, [])
    for fig in kept.values():
        FigureCanvasAgg(fig)  # closed by pyplot: give it a canvas again to measure
    return {"paths": paths, "figures": kept, "out": out}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    return draw_all(tmp_path_factory.mktemp("figs"), records())


@pytest.fixture(scope="module")
def figures(drawn):
    return drawn["figures"]


def model_artists(fig) -> dict[tuple[int, str], str]:
    """(panel index, model label) -> colour of the model's line or markers."""
    out = {}
    for i, ax in enumerate(a for a in fig.axes if a.get_visible()):
        for line in ax.lines:
            gid = line.get_gid() or ""
            if gid.startswith("model:"):
                out[(i, gid[6:])] = matplotlib.colors.to_hex(line.get_color())
    return out


def test_pdf_and_png_for_every_figure(drawn, tmp_path):
    paths, out = drawn["paths"], drawn["out"]
    names = {p.name for p in paths}
    for stem in ("accuracy_vs_params", "accuracy_vs_qpu_seconds", "learning_curves"):
        assert {f"{stem}.pdf", f"{stem}.png", f"{stem}-digits.pdf"} <= names
        pdf = (out / "figures" / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf  # vector, no raster
        with Image.open(out / "figures" / f"{stem}.png") as im:
            width_px = im.size[0]
        assert width_px >= plot_style.PNG_DPI * 2 * plot_style.COLUMN_IN * 0.95
    # the same records give the same PDF bytes (no timestamp)
    recs = records()
    again = plots.plot_accuracy_vs_params(aggregate(recs), tmp_path)
    assert again[0].read_bytes() == paths[0].read_bytes()
    assert "learning_curves.pdf" in (out / "figures" / "captions.md").read_text()


def test_fonts_sizes_and_legends_outside(figures):
    assert set(figures) >= {"accuracy_vs_params", "accuracy_vs_params-digits"}
    for name, fig in figures.items():
        width = fig.get_size_inches()[0]
        assert width <= 2 * plot_style.COLUMN_IN + 0.3
        if name.endswith("-digits") or name.endswith("-meaning"):
            assert width == pytest.approx(plot_style.COLUMN_IN)
        fig.canvas.draw()
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts and min(t.get_fontsize() for t in texts) >= plots.MIN_FONT_PT, name
        renderer = fig.canvas.get_renderer()
        assert fig.legends, name
        for leg in fig.legends:
            box = leg.get_window_extent(renderer)
            for ax in fig.axes:
                if ax.get_visible():
                    assert not box.overlaps(ax.get_window_extent(renderer)), name


def test_one_colour_per_model_in_every_panel_and_figure(figures):
    colour_of: dict[str, set] = {}
    for fig in figures.values():
        for (_, label), colour in model_artists(fig).items():
            colour_of.setdefault(label, set()).add(colour)
    assert set(colour_of) == set(MODELS)
    assert all(len(c) == 1 for c in colour_of.values()), colour_of
    assert len({next(iter(c)) for c in colour_of.values()}) == len(MODELS)  # distinct models
    # both panels of the combined figure draw every model
    params = model_artists(figures["accuracy_vs_params"])
    assert {lab for (i, lab) in params if i == 0} == {lab for (i, lab) in params if i == 1}


def test_error_bars_and_bands_clipped_to_0_100(figures):
    rows = aggregate(records())
    qffn = next(r for r in rows if r["label"] == "qffn-he-4q")
    assert 100 * (qffn["metric_mean"] + qffn["metric_std"]) > 100  # the case to clip
    ys = []
    for ax in figures["accuracy_vs_params"].axes:
        for coll in ax.collections:
            if isinstance(coll, LineCollection):
                ys += [y for seg in coll.get_segments() for _, y in seg]
        assert ax.get_ylim()[1] <= 101
    assert ys and 0 <= min(ys) and max(ys) <= 100
    assert max(ys) == pytest.approx(100)  # clipped, not dropped
    for ax in figures["accuracy_vs_qpu_seconds"].axes:  # classical bands (axhspan)
        assert ax.patches
        for patch in ax.patches:
            box = patch.get_bbox()  # y in data units
            assert 0 <= box.y0 and box.y1 <= 100


def test_log_axis_has_several_labelled_ticks_and_qpu_time_in_days(figures):
    for name, unit in (("accuracy_vs_params", "parameters"), ("accuracy_vs_qpu_seconds", "days")):
        ax = figures[name].axes[0]
        assert unit in ax.get_xlabel()
        lo, hi = ax.get_xlim()
        figures[name].canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels()
                  if t.get_text() and lo <= t.get_position()[0] <= hi]
        assert len(labels) >= 3, (name, labels)
    # the hybrid at 4.9e5 s per epoch sits at 4.9e5 / 86400 = 5.67 days
    ax = figures["accuracy_vs_qpu_seconds"].axes[0]
    x = [line.get_xdata()[0] for line in ax.lines if line.get_gid() == "model:qffn-he-4q"]
    assert x == [pytest.approx(4.9e5 / 86400)]
    assert plot_style.time_unit([30.0]) == ("s", 1.0)
    assert plot_style.time_unit([7200.0, 9000.0]) == ("h", 3600.0)


def test_learning_curves_show_validation_not_test(tmp_path, figures):
    recs = records()
    fig = figures["learning_curves"]
    assert "no validation" in fig.get_suptitle()
    ax = fig.axes[0]
    assert ax.get_ylabel() == "training loss (epoch mean)"
    # the epoch means of the step losses, averaged over seeds: counted here another way
    runs = [r for r in recs if r["job"]["task"] == "digits" and r["job"]["label"] == "qffn-he-4q"]
    want = np.mean([[np.mean(r["losses"][5 * e:5 * (e + 1)]) for e in range(4)] for r in runs], 0)
    line = next(ln for ln in ax.lines if ln.get_gid() == "model:qffn-he-4q")
    assert np.allclose(line.get_ydata(), want)
    # records with a validation metric: it is what the curves show
    recs = records(val=True)
    fig = draw_all(tmp_path, recs)["figures"]["learning_curves"]
    assert fig.get_suptitle() == ""
    ax = fig.axes[0]
    assert ax.get_ylabel() == "validation accuracy (%)"
    line = next(ln for ln in ax.lines if ln.get_gid() == "model:qffn-he-4q")
    assert np.allclose(line.get_ydata(), 100 * np.mean([1.0, 1.0, 0.86]) * np.arange(1, 5) / 4)


def test_shots_figure_single_column_and_clipped(tmp_path, monkeypatch):
    nrows = [{"task": "digits", "model": "qffn-he-4q", "source_run": "r", "n_test": 50,
              "backend": "torch", "shots": s, "accuracy_mean": a, "accuracy_std": sd,
              "repeats": 5, "seconds": 1.0}
             for s, a, sd in ((1, 0.8, 0.1), (8, 0.97, 0.05), (64, 0.99, 0.04), (1024, 1.0, 0.0))]
    nrows.append({**nrows[-1], "shots": "exact", "accuracy_std": float("nan"), "repeats": 1})
    kept = []
    save = plot_style.save
    monkeypatch.setattr(plot_style, "save", lambda fig, stem: kept.append(fig) or save(fig, stem))
    paths = plots.plot_shots(nrows, tmp_path)
    assert {p.suffix for p in paths} == {".pdf", ".png"}
    fig = kept[0]
    assert fig.get_size_inches()[0] == pytest.approx(plot_style.COLUMN_IN)
    segs = [y for c in fig.axes[0].collections if isinstance(c, LineCollection)
            for seg in c.get_segments() for _, y in seg]
    assert max(segs) <= 100


def test_bench_prints_a_narrow_headline_and_the_paths(tmp_path, capsys):
    import json

    from qllm.experiments.aggregate import SummaryTable, to_markdown, write_outputs

    (tmp_path / "runs").mkdir()
    for rec in records():
        (tmp_path / "runs" / f"{rec['job']['run_id']}.json").write_text(json.dumps(rec))
    rows = write_outputs(tmp_path, progress=True)
    out = capsys.readouterr().out
    assert max(len(line.replace(str(tmp_path), "OUT")) for line in out.splitlines()) <= 100
    assert str(tmp_path / "summary.md") in out and "|" not in out
    assert "5.67 d" in out  # 4.9e5 s per epoch, in days
    # in a notebook the rows display as narrow HTML tables, one per task
    assert isinstance(rows, SummaryTable) and rows._repr_markdown_() == to_markdown(list(rows))
    html = rows._repr_html_()
    assert html.count("<table") == 2 and html.count("<tr>") == 2 * (len(MODELS) + 1)
    assert "qffn-he-4q" in html and "5.67 d" in html


def test_sweep_progress_is_a_tqdm_bar_with_an_eta(tmp_path, capsys):
    from qllm.experiments.sweep import run_sweep

    jobs = [{"kind": "bogus", "run_id": f"r{i}"} for i in range(3)]
    summary = run_sweep(jobs, tmp_path, executor="serial", progress=True)
    assert [f["run_id"] for f in summary["failed"]] == ["r0", "r1", "r2"]
    captured = capsys.readouterr()
    err = captured.err
    assert "training runs" in err and "3/3" in err and "<" in err  # elapsed<remaining
    assert "last: r2" in err and captured.out.count("failed r") == 3
    run_sweep(jobs, tmp_path, executor="serial", progress=False)
    assert capsys.readouterr() == ("", "")
