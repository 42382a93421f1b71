"""Knowledge distillation (qllm.distill): the blended loss against a hand computation, teacher
logits computed once and equal to the teacher's own forward, the student's run unchanged by
loading a teacher (alpha=0 gives the plain run bit for bit), and errors naming the argument."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

import qllm.distill as D
from qllm.config import DistillConfig, ModelConfig, TrainConfig
from qllm.errors import CheckpointError, ConfigError
from qllm.train import train
from tests.resume_helpers import train_and_resume

pytestmark = pytest.mark.usefixtures("one_thread")

PARITY = {"task": "parity", "task_options": {"n": 40, "seq_len": 4}, "batch_size": 8,
          "epochs": 1, "progress": False}
SMALL = dict(input_dim=4, n_embd=8, n_head=2, n_layer=1)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(ModelConfig(**SMALL), TrainConfig(**{**PARITY, "epochs": 3, "seed": 9}), out_dir=out)
    return out


def test_distillation_loss_by_hand(gen):
    s = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    t = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    hard = torch.tensor(0.7, dtype=torch.float64)
    T, a = 2.5, 0.3
    p_t = softmax(t.numpy() / T, 1)
    kl = (p_t * (np.log(p_t) - log_softmax(s.numpy() / T, 1))).sum(1).mean()
    expected = (1 - a) * 0.7 + a * T * T * kl
    assert float(D.distillation_loss(s, t, hard, T, a)) == pytest.approx(expected, rel=1e-12)


def test_teacher_logits_are_the_teachers_forward_and_cached(teacher_dir):
    from qllm.cli.common import load_model
    from qllm.data import load_task

    task = load_task("parity", **PARITY["task_options"])
    D._CACHE.clear()
    logits = D.teacher_logits(str(teacher_dir), task)
    model, _ = load_model(teacher_dir / "checkpoint.pt")
    with torch.no_grad():
        torch.testing.assert_close(logits, model.eval()(task.x_train))
    assert D.teacher_logits(str(teacher_dir / "checkpoint.pt"), task) is logits  # file or folder


def test_a_callable_teacher_runs_once_for_several_students():
    calls = []

    def teacher(x):
        calls.append(len(x))
        total = x.float().reshape(len(x), -1).sum(1)
        return torch.stack([total, -total], -1)  # (B, 2)

    D.register_teacher("sum_of_inputs", teacher, n_classes=2, task="parity")
    cfg = TrainConfig(**PARITY, distill=DistillConfig("callable:sum_of_inputs", 2.0, 0.7))
    for seed in (0, 1):
        res = train(ModelConfig(**SMALL), cfg.override({"seed": seed}))
        assert res["train_config"]["distill"]["alpha"] == 0.7
    # each seed holds out its own validation split, so each training set is scored once ...
    from qllm.data import load_task, with_validation

    sizes = [len(with_validation(load_task("parity", n=40, seq_len=4), cfg.val_frac, seed).x_train)
             for seed in (0, 1)]
    assert sum(calls) == sum(sizes) and sizes[0] < 32
    # ... and a third student on seed 0's data reads the cache
    train(ModelConfig(**SMALL), cfg.override({"seed": 0, "lr": 1e-3}))
    assert sum(calls) == sum(sizes)


def test_alpha_zero_is_the_plain_run_bit_for_bit(teacher_dir):
    """Loading the teacher (which builds a model: initial weights drawn) leaves the student's
    RNG untouched, and alpha=0 leaves only the hard loss."""
    plain = train(ModelConfig(**SMALL, ffn="quantum", quantum=dict(n_qubits=3, n_layers=1)),
                  TrainConfig(**PARITY, seed=4))
    zero = train(ModelConfig(**SMALL, ffn="quantum", quantum=dict(n_qubits=3, n_layers=1)),
                 TrainConfig(**PARITY, seed=4, distill=DistillConfig(str(teacher_dir), 2.0, 0.0)))
    assert zero["losses"] == plain["losses"]
    blended = train(ModelConfig(**SMALL), TrainConfig(**PARITY, seed=4,
                                                      distill=DistillConfig(str(teacher_dir))))
    assert blended["losses"] != plain["losses"] and np.isfinite(blended["losses"]).all()


def test_cli_sets_the_teacher(teacher_dir, tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "qllm.cli", "train", "--task", "parity", "--set",
                        'train.task_options={"n": 40, "seq_len": 4}', "--set", "n_embd=8",
                        "--set", f"train.distill.teacher={teacher_dir}", "--set",
                        "train.max_steps=2", "--set", "train.progress=false",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import json

    res = json.loads((tmp_path / "results.json").read_text())
    assert res["train_config"]["distill"]["teacher"] == str(teacher_dir)


# -- bad input ---------------------------------------------------------------------------------
def test_missing_teacher_checkpoint(tmp_path):
    cfg = TrainConfig(**PARITY, distill=DistillConfig(str(tmp_path / "nowhere")))
    with pytest.raises(CheckpointError, match="distill.teacher=.*no checkpoint"):
        train(ModelConfig(**SMALL), cfg)


def test_teacher_of_another_task_or_class_count(teacher_dir):
    cfg = TrainConfig(task="meaning", epochs=1, progress=False,
                      distill=DistillConfig(str(teacher_dir)))
    with pytest.raises(ConfigError, match="trained on task 'parity'.*'meaning'"):
        train(ModelConfig(**SMALL), cfg)
    D.register_teacher("three_classes", lambda x: torch.zeros(len(x), 3), n_classes=3)
    cfg = TrainConfig(**PARITY, distill=DistillConfig("callable:three_classes"))
    with pytest.raises(ConfigError, match="predicts 3 classes.*has 2"):
        train(ModelConfig(**SMALL), cfg)
    with pytest.raises(ConfigError, match="no teacher 'unknown' registered"):
        train(ModelConfig(**SMALL), cfg.override({"distill.teacher": "callable:unknown"}))


def test_language_model_tasks_are_refused():
    D.register_teacher("any", lambda x: x, n_classes=8)
    cfg = TrainConfig(task="copy", epochs=1, progress=False, distill=DistillConfig("callable:any"))
    with pytest.raises(ConfigError, match="supports classification tasks"):
        train(ModelConfig(vocab_size=8), cfg)


@pytest.mark.parametrize("field,value", [("temperature", 0.0), ("alpha", 1.5), ("teacher", "")])
def test_bad_distill_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"distill.{field}"):
        DistillConfig(**{"teacher": "x", field: value})


# -- the experts preset ---------------------------------------------------------------------------
def test_experts_preset_jobs_pair_every_student_with_and_without_the_teacher(tmp_path):
    from qllm.experiments.bench import dry_run, preset_jobs
    from qllm.experiments.experts import teacher_checkpoint

    jobs = preset_jobs("experts")
    assert jobs[0]["label"] == "teacher" and len(jobs) == 1 + 3 * 6
    teacher = str(teacher_checkpoint(Path("results/experts"), "digits"))
    for job in jobs[1:]:
        d = job["train"]["distill"]
        assert (d["teacher"] == teacher) == job["label"].endswith("+kd")
    labels = {j["label"] for j in jobs}
    assert labels == {"teacher", "hybrid", "hybrid+kd", "classical", "classical+kd",
                      "qmoe-4e-top1", "moe-4e-top1"}
    listing = dry_run("experts")
    assert "hybrid+kd" in listing and "seeds [0, 1, 2]" in listing
    with pytest.raises(ConfigError, match="unknown task.*allowed"):
        preset_jobs("experts", ["sort"])


def test_distillation_gains_by_hand():
    from qllm.experiments.experts import distillation_gains

    def row(label, accs):
        return {"task": "digits", "label": label, "accuracy_by_seed": dict(enumerate(accs))}

    rows = [row("hybrid", [0.90, 0.92]), row("hybrid+kd", [0.93, 0.93]),
            row("classical", [0.95, 0.95]), row("classical+kd", [0.96, 0.94])]
    g = distillation_gains(rows)["digits"]
    assert g["hybrid"]["mean"] == pytest.approx(0.02)  # (0.03 + 0.01) / 2
    assert g["hybrid"]["std"] == pytest.approx(np.std([0.03, 0.01], ddof=1))
    assert g["classical"]["mean"] == pytest.approx(0.0)
    assert ("helped the hybrid student more than the classical one: +2.0 ± 1.4 against +0.0 ± 1.4"
            in g["sentence"])


def test_a_distilled_run_resumes_exactly(teacher_dir, tmp_path, monkeypatch):
    cfg = TrainConfig(**{**PARITY, "epochs": 2}, checkpoint_every=3, seed=3,
                      distill=DistillConfig(str(teacher_dir), 3.0, 0.6))
    model = ModelConfig(**SMALL, ffn="quantum", quantum=dict(n_qubits=3, n_layers=1))
    # every run computes the teacher's logits afresh: the resumed one must not need the cache
    whole, resumed = train_and_resume(monkeypatch, tmp_path, model, cfg, crash_step=3,
                                      before_each=D._CACHE.clear)
    assert len(whole["losses"]) == 8
    assert whole["final"] == resumed["final"]
