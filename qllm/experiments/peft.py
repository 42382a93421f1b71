"""``qllm bench --preset peft``: every adapter and classical control on a frozen MiniLM, on
``stdlib_topics`` and ``meaning``, over 3 seeds; mean +- std of test accuracy, trainable
parameters, train time and projected QPU cost; plus a reference made without any adapter:
scikit-learn's logistic regression on the frozen mean-pooled (L2-normalised) embeddings.

Sized for a 2-core CPU (short sequences, few steps, a training subset on stdlib_topics: see
``PEFT_TASKS``). Output under ``out_dir/peft/``: ``runs/<task>-<adapter>-seed<k>/results.json``
(a re-run reuses finished runs), ``summary.json``, ``table.md``, and ``feature_cache/`` (the
heads' backbone features, computed once per task).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from qllm.results import machine, versions, write_json

SEEDS = (0, 1, 2)
# Per task: tokens per text, training subset, and steps of the adapters that run the backbone.
PEFT_TASKS = {
    # 16 tokens (was 24) so the whole preset fits 15 minutes of a quiet 2-core machine
    "stdlib_topics": dict(max_length=16, max_train=224, max_steps=21, batch_size=16),
    "meaning": dict(max_length=12, max_train=0, max_steps=14, batch_size=16,
                    task_options={"n": 200}),
}
# Per adapter: learning rate, and epochs for head-only methods (cached features: cheap).
ADAPTER_SETTINGS = {
    "quantum_lora": dict(lr=5e-3), "lora": dict(lr=5e-3),
    "quantum_adapter": dict(lr=5e-3), "bottleneck": dict(lr=5e-3),
    # soft prompts move slowly at 5e-3 (the usual prompt-tuning rates are higher); same for both
    "quantum_prompt": dict(lr=2e-2), "prompt": dict(lr=2e-2),
    "quantum_head": dict(lr=2e-2, epochs=30, max_steps=0),
    "linear_head": dict(lr=2e-2, epochs=30, max_steps=0),
    "mlp_head": dict(lr=2e-2, epochs=30, max_steps=0),
    "full": dict(lr=1e-4),
}


def peft_configs(tasks=None, seeds=SEEDS, backbone: str = "minilm",
                 overrides: dict | None = None, adapters=None) -> list:
    """Every FinetuneConfig of the preset, in run order (``overrides``: fields set on all;
    ``adapters``: a subset of ``ADAPTER_SETTINGS``)."""
    from qllm.pretrained.config import FinetuneConfig

    out = []
    for task in tasks or PEFT_TASKS:
        for adapter, settings in ADAPTER_SETTINGS.items():
            if adapters and adapter not in adapters:
                continue
            for seed in seeds:
                fields = {"epochs": 50, "eval_every": 50, **PEFT_TASKS[task], **settings,
                          **(overrides or {})}
                out.append(FinetuneConfig(backbone=backbone, task=task, adapter=adapter,
                                          seed=seed, progress=False, **fields))
    return out


def logistic_reference(cfg) -> dict:
    """Test accuracy of logistic regression on the frozen, normalised embeddings of ``cfg``'s
    backbone, task, length and training subset."""
    from sklearn.linear_model import LogisticRegression

    from qllm.pretrained import embed, load_backbone, load_text_task
    from qllm.pretrained.inputs import subset

    backbone, max_length = load_backbone(cfg.backbone), cfg.max_length
    task = subset(load_text_task(cfg.task, **cfg.task_options), cfg.max_train)
    t0 = time.perf_counter()
    x = {s: embed(backbone, task.texts[s], max_length).numpy() for s in ("train", "test")}
    clf = LogisticRegression(max_iter=2000).fit(x["train"], task.labels["train"])
    return {"test_accuracy": float(clf.score(x["test"], task.labels["test"])),
            "wall_time_s": time.perf_counter() - t0, "n_train": len(task.labels["train"])}


def _summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["adapter"]), []).append(r)
    out = []
    for (task, adapter), rs in groups.items():
        acc = [r["final"]["test"]["accuracy"] for r in rs]
        cost = next((r["cost"] for r in rs if "cost" in r), {})
        qpu = cost.get("qpu", {}).get("ibm_heron", {})
        out.append({
            "task": task, "adapter": adapter, "seeds": len(rs),
            "test_accuracy_mean": statistics.mean(acc),
            "test_accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "trainable_params": rs[0]["params"]["trainable"],
            "train_time_s_mean": statistics.mean(r["wall_time_s"] for r in rs),
            "steps": rs[0]["steps"],
            "circuit_sites": len(cost.get("sites", [])),
            "qpu_train_run_s": qpu.get("per_run", {}).get("qpu_seconds"),
            "qpu_inference_token_s": qpu.get("per_inference_token", {}).get("qpu_seconds"),
        })
    return out


def _fmt_s(s) -> str:
    if s is None:
        return "-"
    for unit, k in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= k:
            return f"{s / k:.1f} {unit}"
    return f"{s:.3g} s"


def table(summary: list[dict], references: dict) -> str:
    lines = ["| task | adapter | test accuracy (mean ± std) | trainable params | steps | "
             "train time | QPU: training run | QPU: inference token |", "|---" * 8 + "|"]
    for r in summary:
        lines.append(
            f"| {r['task']} | {r['adapter']} | {100 * r['test_accuracy_mean']:.1f} ± "
            f"{100 * r['test_accuracy_std']:.1f}% | {r['trainable_params']:,} | {r['steps']} | "
            f"{r['train_time_s_mean']:.1f} s | {_fmt_s(r['qpu_train_run_s'])} | "
            f"{_fmt_s(r['qpu_inference_token_s'])} |")
    for task, ref in references.items():
        lines.append(f"| {task} | logistic regression on frozen embeddings (reference) | "
                     f"{100 * ref['test_accuracy']:.1f}% | - | - | {ref['wall_time_s']:.1f} s "
                     "| - | - |")
    return "\n".join(lines)


def run_peft(out_dir: str | Path = "results", tasks=None, seeds=SEEDS,
             progress: bool = True, backbone: str = "minilm", overrides: dict | None = None,
             adapters=None) -> dict:
    """Run the preset (reusing finished runs); returns the summary written to summary.json.
    The cost report, the same for every seed, is computed on the first seed's run only."""
    import json

    from qllm.pretrained import finetune

    out = Path(out_dir) / "peft"
    t0 = time.perf_counter()
    rows = []
    configs = peft_configs(tasks, seeds, backbone, overrides, adapters)
    for cfg in tqdm(configs, desc="peft bench", disable=not progress):
        run_dir = out / "runs" / f"{cfg.task}-{cfg.adapter}-seed{cfg.seed}"
        if (run_dir / "results.json").exists():
            rows.append(json.loads((run_dir / "results.json").read_text()))
            continue
        res = finetune(cfg, out_dir=run_dir,
                       cost_options=None if cfg.seed == configs[0].seed else False,
                       feature_cache_dir=out / "feature_cache")
        res.pop("model")
        rows.append(res)
    references = {c.task: logistic_reference(c) for c in configs if c.adapter == "linear_head"
                  and c.seed == configs[0].seed}
    summary = {"preset": "peft", "command": " ".join(sys.argv),
               "date": time.strftime("%Y-%m-%d %H:%M %Z"), "tasks": PEFT_TASKS,
               "adapters": ADAPTER_SETTINGS, "seeds": list(seeds), "rows": _summarise(rows),
               "references": references, "wall_time_s": time.perf_counter() - t0,
               "versions": versions(), "machine": machine()}
    text = table(summary["rows"], references)
    write_json(out / "summary.json", summary)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return summary


def collect(*folders, references: dict | None = None) -> str:
    """The table of every finished run under ``folder/peft/runs/`` of each folder (e.g. the
    parts of a preset run in separate processes), with ``references`` as in ``run_peft``."""
    import json

    rows = [json.loads(p.read_text()) for f in folders
            for p in sorted((Path(f) / "peft" / "runs").glob("*/results.json"))]
    rows.sort(key=lambda r: (r["task"], list(ADAPTER_SETTINGS).index(r["adapter"]), r["seed"]))
    return table(_summarise(rows), references or {})


def run_preset(name: str, out_dir: str | Path = "results", progress: bool = True, executor=None,
               workers=None, ray_address=None, tasks=None) -> dict:
    """``qllm bench --preset peft`` (one process: the backbone is loaded once)."""
    return run_peft(out_dir, tasks, progress=progress)
