"""Benchmark presets: for each task, classical baselines (width-matched and parameter-matched)
and hybrid variants (quantum FFN, quantum attention, both, the FFN in the last block only; ansatz
families; qubit counts) over several seeds, each hybrid with its circuit controls (``bottleneck``
and ``no_entanglement``, ``qllm.experiments.controls``), with the cost ledger of every run; then a
noise study, an aggregated table, the hybrid-vs-control statistics, Pareto frontiers and plots.

Presets (``qllm bench --preset NAME``; see benchmarks/README.md for the grids and wall times):
- ``tiny``: a few steps per run; for tests.
- ``quick``: 4 seeds; every task has both classical baselines and the 4-qubit quantum FFN; the
  ``meaning`` task also carries the ansatz, qubit-count, last-block and quantum-attention
  variants; every hybrid has both circuit controls.
- ``full``: 5 seeds; the whole grid on every task.

Output, under ``out_dir/<preset>/``: ``runs/<run_id>.json`` (one per run; a re-run skips runs
whose JSON exists), ``noise/*.json``, ``summary.csv``, ``summary.md``, ``attribution.csv``,
``attribution.md``, ``pareto.md``, ``figures/*.png``, ``summary.json``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.errors import ConfigError

ANSATZ_SHORT = {"hardware_efficient": "he", "strongly_entangling": "se", "sim14": "sim14",
                "basic_entangler": "be", "hardware_efficient_real": "her", "rbs_pyramid": "rbs",
                "rx_ry_cnot": "rxy"}
# The cost ledger's settings: parameter-shift training at 1024 shots per circuit, gate counts
# transpiled onto IBM Torino (heavy-hex, 133 qubits: every circuit of the grid fits), QPU seconds
# projected on the IBM Heron profile.
COST = {"gradient": "parameter-shift", "shots": 1024, "target": "ibm_torino",
        "profile": "ibm_heron"}

# Per task: model shape, training settings and options of each preset. Non-digits tasks get few
# epochs and small models to keep ``quick`` within minutes on 2 cores.
TASKS = {
    "digits": {"dims": {"n_embd": 32, "n_head": 4, "n_layer": 2},
               "train": {"tiny": {"epochs": 1, "max_steps": 4}, "quick": {"epochs": 15},
                         "full": {"epochs": 20}}},
    "meaning": {"dims": {"n_embd": 16, "n_head": 2, "n_layer": 2},
                "train": {"tiny": {"epochs": 1, "max_steps": 3}, "quick": {"epochs": 8},
                          "full": {"epochs": 15}}},
    "sort": {"dims": {"n_embd": 32, "n_head": 4, "n_layer": 2},
             "train": {"tiny": {"epochs": 1, "max_steps": 3}, "quick": {"epochs": 4},
                       "full": {"epochs": 8}}},
    "stdlib_text": {"dims": {"n_embd": 32, "n_head": 4, "n_layer": 2},
                    "options": {"tiny": {"max_chars": 5000}, "quick": {"max_chars": 40000},
                                "full": {"max_chars": 200000}},
                    "train": {"tiny": {"epochs": 1, "max_steps": 3}, "quick": {"epochs": 4},
                              "full": {"epochs": 6}}},
}
TASKS["text"] = {**TASKS["stdlib_text"], "options": {"tiny": {"max_chars": 5000},
                                                     "quick": {"max_chars": 40000},
                                                     "full": {"max_chars": 200000}}}

FULL_ANSATZE = ("hardware_efficient", "strongly_entangling", "sim14")
FULL_QUBITS = (4, 6, 8)


def hybrid_variants(preset: str, task: str) -> list[dict]:
    """The hybrid grid of a preset and task: dicts with attn, ffn, ansatz, n_qubits and blocks
    ("all", or "last": the quantum sublayer only in the last block)."""
    def v(parts, ansatz="hardware_efficient", n=4, blocks="all"):
        return {"attn": "quantum" if "attn" in parts else "classical",
                "ffn": "quantum" if "ffn" in parts else "classical", "ansatz": ansatz,
                "n_qubits": n, "blocks": blocks}

    if preset == "tiny":
        return [v(("ffn",))]
    if preset == "quick":
        if task != "meaning":
            return [v(("ffn",))]
        return ([v(("ffn",)), v(("attn",)), v(("attn", "ffn")), v(("ffn",), blocks="last")]
                + [v(("ffn",), a) for a in FULL_ANSATZE[1:]]
                + [v(("ffn",), n=n) for n in FULL_QUBITS[1:]])
    # full: the quantum FFN over every ansatz family and qubit count; quantum attention and both
    # with the hardware-efficient ansatz over every qubit count; the FFN in the last block only
    return ([v(("ffn",), a, n) for a in FULL_ANSATZE for n in FULL_QUBITS]
            + [v(("attn",), "hardware_efficient", n) for n in FULL_QUBITS]
            + [v(("attn", "ffn"), "hardware_efficient", n) for n in FULL_QUBITS]
            + [v(("ffn",), blocks="last")])


def hybrid_label(var: dict) -> str:
    parts = ("both" if var["attn"] != "classical" and var["ffn"] != "classical"
             else "attn" if var["attn"] != "classical" else "ffn")
    where = "-last" if var.get("blocks") == "last" else ""
    return f"q{parts}{where}-{ANSATZ_SHORT.get(var['ansatz'], var['ansatz'])}-{var['n_qubits']}q"


def _placed(kind: str, blocks: str, n_layer: int):
    """A sublayer kind in every block, or (blocks="last") only in the last one."""
    if blocks != "last" or kind == "classical":
        return kind
    return ["classical"] * (n_layer - 1) + [kind]


PRESET_SEEDS = {"tiny": (0, 1), "quick": (0, 1, 2, 3), "full": (0, 1, 2, 3, 4)}
PRESET_TASKS = {"tiny": ("digits", "meaning"),
                "quick": ("digits", "meaning", "sort", "stdlib_text"),
                "full": ("digits", "meaning", "sort", "stdlib_text")}
NOISE = {  # the noise study per preset: shots grid, sampler repeats, test subset, fake device
    "tiny": {"shots": [None, 512, 128], "repeats": 1, "n_test": 16, "devices": []},
    "quick": {"shots": [None, 8192, 2048, 512, 128, 32, 8, 2, 1], "repeats": 5, "n_test": 200,
              "devices": ["aer:fake_manila"], "device_shots": 4096},
    "full": {"shots": [None, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1],
             "repeats": 5, "n_test": 359, "devices": ["aer:fake_manila"], "device_shots": 4096},
}


def task_jobs(preset: str, task: str, options: dict | None = None,
              seeds: tuple | None = None) -> list[dict]:
    """Every training job of one task: width-matched classical, hybrids, their circuit controls
    (``bottleneck``, ``no_entanglement``: ``qllm.experiments.controls``), and one
    parameter-matched classical per group of hybrids within 10% of each other's counts."""
    from qllm.experiments.baselines import param_matched, task_fields, width_matched
    from qllm.experiments.controls import controls_for

    spec = TASKS[task]
    options = {**spec.get("options", {}).get(preset, {}), **(options or {})}
    fields = task_fields(task, options)
    train = TrainConfig(task=task, task_options=options, batch_size=32, lr=3e-3,
                        progress=False, **spec["train"][preset])
    base = {**spec["dims"], "input_dim": 4}  # a placeholder: the task fills in the input fields
    entries = []  # (label, family, ModelConfig, extra metadata)
    hybrids = []
    for var in hybrid_variants(preset, task):
        q = QuantumConfig(n_qubits=var["n_qubits"], n_layers=2, ansatz=var["ansatz"])
        n_layer = base["n_layer"]
        cfg = ModelConfig(**base, attn=_placed(var["attn"], var["blocks"], n_layer),
                          ffn=_placed(var["ffn"], var["blocks"], n_layer),
                          quantum=q).override(fields)
        hybrids.append((hybrid_label(var), cfg, var))
    width = width_matched(hybrids[0][1])
    entries.append(("classical-width", "classical-width", width, {}))
    matched = []  # [(label, cfg, params)]
    for label, cfg, var in hybrids:
        cparam, info = param_matched(cfg)
        target = info["target_params"]
        near = [m for m in matched if abs(m[2] - target) <= 0.1 * target]
        if near:
            ref_label, ref_params = near[0][0], near[0][2]
        else:
            ref_label, ref_params = f"classical-params~{label}", info["params"]
            matched.append((ref_label, cparam, ref_params))
            entries.append((ref_label, "classical-params", cparam,
                            {"matched_to": label, "param_match": info}))
        controls = controls_for(cfg)
        entries.append((label, "hybrid", cfg, {
            "variant": var, "param_baseline": ref_label,
            "controls": {name: f"{label}~{name}" for name in controls},
            "param_match": {"target_params": info["target_params"], "params": ref_params,
                            "rel_diff": (ref_params - target) / target}}))
        for name, ccfg in controls.items():
            entries.append((f"{label}~{name}", name, ccfg, {"control_of": label,
                                                            "variant": var}))
    jobs = []
    for seed in seeds or PRESET_SEEDS[preset]:
        for label, family, cfg, meta in entries:
            jobs.append({"kind": "train", "run_id": f"{task}-{label}-seed{seed}".replace("~", "-"),
                         "preset": preset, "task": task, "label": label, "family": family,
                         "seed": seed, "model": cfg.to_dict(),
                         "train": train.override({"seed": seed}).to_dict(), "cost": COST, **meta})
    return jobs


# Presets with a module of their own that takes the sweep options (its preset_jobs and
# run_preset take over: tasks, executor, workers).
# Presets with a runner of their own, beside this module's classical-vs-hybrid sweeps
# (PRESET_SEEDS): name -> (module, what it runs). Each module has ``run_preset(name, out_dir,
# progress, executor, workers, ray_address, tasks)``; ``preset_jobs`` where it can list its runs.
OWN_PRESETS = {
    "peft": ("qllm.experiments.peft", "adapters and classical controls on a frozen pretrained "
                                      "MiniLM (stdlib_topics, meaning)"),
    "experts": ("qllm.experiments.experts", "quantum and classical mixtures of experts, "
                                            "distilled and plain students (digits, meaning)"),
    "experts_tiny": ("qllm.experiments.experts", "a smoke test of the experts preset"),
    "compression": ("qllm.experiments.compression", "pruning and quantizing the digits hybrid's "
                                                    "circuits: accuracy against gates and QPU time"),
    "multimodal": ("qllm.experiments.multimodal", "digits images with text questions: quantum "
                                                  "fusion against its classical twin"),
}
PRESET_NAMES = (*PRESET_SEEDS, *OWN_PRESETS)


def _own(preset: str):
    import importlib

    return importlib.import_module(OWN_PRESETS[preset][0]) if preset in OWN_PRESETS else None


def preset_jobs(preset: str, tasks: list[str] | None = None, text: str | None = None) -> list[dict]:
    """Every training job of a preset (optionally a subset of its tasks, plus ``--text PATH``)."""
    own = _own(preset)
    if own is not None:
        if not hasattr(own, "preset_jobs"):
            raise ConfigError(f"preset {preset!r} runs as one job ({OWN_PRESETS[preset][1]}); it "
                              "has no list of runs to show or estimate")
        return own.preset_jobs(preset, tasks)
    if preset not in PRESET_SEEDS:
        raise ConfigError(f"unknown preset {preset!r}; allowed: {', '.join(PRESET_NAMES)}")
    tasks = list(tasks or PRESET_TASKS[preset])
    unknown = [t for t in tasks if t not in TASKS or t == "text"]
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown}; allowed: {sorted(set(TASKS) - {'text'})} "
                          "(and --text PATH)")
    jobs = []
    for task in tasks:
        jobs += task_jobs(preset, task)
    if text:
        # the file's name goes into the task column and run ids, so two files never share runs
        stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(text).stem)[:40]
        for job in task_jobs(preset, "text", {"path": str(Path(text).resolve())}):
            job["task"] = f"text:{stem}"
            job["run_id"] = f"text_{stem}" + job["run_id"][len("text"):]
            jobs.append(job)
    return jobs


def noise_jobs(preset: str, out_dir: Path, task: str = "digits") -> list[dict]:
    """The noise study's job: seed 0 of the best hybrid variant of ``task`` (best by mean
    validation accuracy over seeds, never the test set; seed 0 rather than the best seed, so the
    pick is not tuned on noise)."""
    from qllm.experiments.aggregate import load_records

    records = [r for r in load_records(sorted((out_dir / "runs").glob("*.json")))
               if r["job"]["task"] == task and r["job"]["family"] == "hybrid"
               and r["job"]["variant"]["n_qubits"] <= 5]  # fake_manila has 5 qubits
    if not records:
        return []
    by_label: dict[str, list] = {}
    for r in records:
        by_label.setdefault(r["job"]["label"], []).append(
            (r.get("validation") or r["final"])["accuracy"])  # older runs had no validation
    best = max(by_label, key=lambda k: sum(by_label[k]) / len(by_label[k]))
    seed0 = min((r for r in records if r["job"]["label"] == best), key=lambda r: r["job"]["seed"])
    return [{"kind": "noise", "run_id": f"{task}-{best}-seed{seed0['job']['seed']}-noise",
             "preset": preset, "task": task, "source_run": seed0["job"]["run_id"],
             "label": best, **NOISE[preset]}]


def run_preset(name: str, out_dir: str | Path = "results", progress: bool = True,
               executor: str = "local", workers: int | None = None,
               ray_address: str | None = None, tasks: list[str] | None = None,
               text: str | None = None, noise: bool = True) -> list[dict]:
    """Run a preset (training sweep, noise study), write CSV, markdown, plots and
    ``summary.json`` under ``out_dir/<name>/``, print the tables, and return the aggregated rows.
    Runs whose JSON exists are skipped. See ``qllm.experiments.sweep.run_sweep`` for the executors."""
    if name in OWN_PRESETS:
        return _own(name).run_preset(name, out_dir, progress, executor, workers, ray_address, tasks)
    from qllm.experiments.aggregate import write_outputs
    from qllm.experiments.sweep import run_sweep
    from qllm.results import machine, versions, write_json

    out = Path(out_dir) / name
    t0 = time.perf_counter()
    jobs = preset_jobs(name, tasks, text)
    if progress:
        print(f"preset {name}: {len(jobs)} training runs -> {out}", flush=True)
    followups = []
    if noise and (tasks is None or "digits" in tasks):
        # the noise study starts in the same workers once the digits hybrids are trained
        picks = [j["run_id"] for j in jobs if j["task"] == "digits" and j["family"] == "hybrid"]
        followups.append((picks, lambda: noise_jobs(name, out)))
    sweeps = [run_sweep(jobs, out, executor, workers, ray_address, progress, followups)]
    rows = write_outputs(out, progress=progress)
    failed = [f for s in sweeps for f in s["failed"]]
    write_json(out / "summary.json", {
        "preset": name, "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "wall_time_s": time.perf_counter() - t0, "versions": versions(), "machine": machine(),
        "executor": executor, "workers": workers, "training_runs": len(jobs),
        "jobs_ran": sum(len(s["ran"]) for s in sweeps),
        "jobs_skipped": sum(len(s["skipped"]) for s in sweeps),
        "failed": [{k: f[k] for k in ("run_id", "error")} for f in failed]})
    if failed:
        for f in failed:
            print(f"FAILED {f['run_id']}: {f['error']}\n{f.get('traceback', '')}", file=sys.stderr)
    if progress:
        print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


PRESETS = {name: (lambda name=name: preset_jobs(name)) for name in PRESET_SEEDS}


def dry_run(name: str, tasks: list[str] | None = None, text: str | None = None) -> str:
    """A listing of a preset's runs (label x seeds per task) without running anything."""
    jobs = preset_jobs(name, tasks, text)
    counts: dict = {}
    for j in jobs:
        counts.setdefault((j["task"], j["label"]), []).append(j["seed"])
    lines = [f"{name}: {len(jobs)} runs"] + [f"  {t:<12} {lab:<36} seeds {s}"
                                              for (t, lab), s in counts.items()]
    return "\n".join(lines)


def estimate(name: str, tasks: list[str] | None = None, text: str | None = None,
             steps: int = 4, workers: int = 1) -> str:
    """Projected wall time of a preset: each distinct (task, model) trains ``steps`` steps here
    on one thread (after one warm-up step); the fastest step (the least disturbed by other load
    on the machine) is scaled to the preset's steps, plus 15% for evaluation, times its seeds,
    divided over ``workers`` (assumes a perfect pool). The estimate is for this machine; it
    ignores the cost report and the noise study (about a minute)."""
    import torch

    torch.set_num_threads(1)

    from qllm.data import load_task
    from qllm.model import HybridTransformer
    from qllm.train import model_config_for

    jobs = preset_jobs(name, tasks, text)
    seeds: dict = {}
    for j in jobs:
        seeds.setdefault((j["task"], j["label"]), []).append(j)
    lines, total = [], 0.0
    for (task_name, label), group in seeds.items():
        job = group[0]
        tcfg = TrainConfig.from_dict(job["train"])
        task = load_task(tcfg.task, **tcfg.task_options)
        model = HybridTransformer(model_config_for(task, ModelConfig.from_dict(job["model"])))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        xb, yb = task.x_train[:tcfg.batch_size], task.y_train[:tcfg.batch_size]
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad()
            model(xb, yb)[1].backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        per_step = min(times[1:])
        n_steps = -(-len(task.x_train) // tcfg.batch_size) * tcfg.epochs
        if tcfg.max_steps:
            n_steps = min(n_steps, tcfg.max_steps)
        run_s = per_step * n_steps * 1.15
        total += run_s * len(group)
        lines.append(f"  {task_name:<12} {label:<32} {len(group)} x {run_s:8.0f} s")
    head = (f"{name}: {len(jobs)} runs, about {total / 3600:.1f} CPU-hours here; "
            f"{total / workers / 3600:.1f} h with {workers} worker(s)")
    return "\n".join([head, *lines])
