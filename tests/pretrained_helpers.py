"""What the two pretrained test files share: the tiny two-class text task, and a fine-tune run
beside the same run crashed after a checkpoint and resumed, compared to the bit."""

from __future__ import annotations

import importlib

from qllm.pretrained import finetune
from qllm.pretrained.tasks import split_task
from tests.resume_helpers import assert_same_state, whole_and_resumed

# the module, not the function of the same name that qllm.pretrained exports
finetune_module = importlib.import_module("qllm.pretrained.finetune")


def tiny_text_task():
    """36 short sentences x 2, labelled food (0) or IT (1) by their last word."""
    texts = [f"the {w} {v} {o}" for w in ("cook", "chef", "engineer") for v in ("bakes", "runs")
             for o in ("bread", "code", "sauce", "program", "meal", "dinner")]
    labels = [int(t.split()[3] in ("code", "program")) for t in texts]
    return split_task("tiny", texts * 2, labels * 2, ["food", "it"], seed=0)


def finetune_and_resume(cfg, task, tmp_path, monkeypatch, crash_step: int):
    """``(full, resumed)`` results of ``cfg`` on ``task``: uninterrupted, and crashed after the
    checkpoint of ``crash_step`` and resumed; asserts equal losses, metrics and trainables."""
    def run(folder, resume):
        return finetune(cfg, out_dir=tmp_path / folder, resume=resume, task=task,
                        cost_options=False)

    full, resumed = whole_and_resumed(monkeypatch, finetune_module, crash_step, run)
    assert resumed["losses"] == full["losses"]
    assert resumed["final"] == full["final"]
    assert_same_state(finetune_module.trainable_state(full["model"]),
                      finetune_module.trainable_state(resumed["model"]))
    return full, resumed
