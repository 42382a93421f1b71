"""Reliability, part 2 (issue items 5-12 and the CLI-safety findings): resume and flags,
non-finite checkpoints, eval counts, the seed rule, configs that are not configs, ignored inputs,
Ctrl-C, run folders; each a test that failed before its fix."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qllm.checkpoint import load_checkpoint, save_checkpoint
from qllm.cli import main
from qllm.config import TrainConfig
from qllm.errors import BackendError, ConfigError
from qllm.runlock import LOCK_NAME
from qllm.train import train
from tests.reliability_helpers import ENV, TINY, assert_one_line_error, cli, finished_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return finished_run(tmp_path_factory)


# -- 5. --resume and other flags ---------------------------------------------------------------
@pytest.mark.parametrize("extra,needles", [
    (["--epochs", "3"], ["train.epochs 10 -> 3"]),
    (["--set", "nosuchkey=1"], ["nosuchkey"]),
    (["--set", "ffn=quantum"], ["model.ffn 'classical' -> 'quantum'"]),
    (["--seed", "5"], ["train.seed 0 -> 5"]),
    (["--overwrite"], ["--overwrite"]),
])
def test_resume_refuses_flags_that_change_the_run(run_dir, capsys, extra, needles):
    code, _, err = cli(["train", "--out", run_dir, "--resume", *extra], capsys)
    assert_one_line_error(code, err, *needles)


def test_resume_accepts_flags_that_change_nothing(run_dir, capsys):
    code, out, err = cli(["train", "--out", run_dir, "--resume", "--epochs", "10", "--device",
                          "cpu", "--set", "train.progress=false"], capsys)
    assert code == 0, err
    assert json.loads(out)["final"] == json.loads((run_dir / "results.json").read_text())["final"]


def test_resume_with_the_same_config_file(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"n_embd": 8, "n_head": 2, "n_layer": 1},
                                  "train": {"max_steps": 2, "progress": False}}))
    out = tmp_path / "R"
    assert cli(["train", "--config", config, "--out", out], capsys)[0] == 0
    code, _, err = cli(["train", "--config", config, "--out", out, "--resume"], capsys)
    assert code == 0, err
    code, _, err = cli(["train", "--config", config, "--out", out, "--resume", "--set",
                        "n_embd=16"], capsys)
    assert_one_line_error(code, err, "model.n_embd 8 -> 16")


# -- 6. non-finite checkpoints -----------------------------------------------------------------
def test_eval_refuses_nan_weights_naming_the_tensor(run_dir, tmp_path, capsys):
    state = load_checkpoint(run_dir / "checkpoint.pt")
    state["model"]["head.weight"][0, 0] = math.nan
    save_checkpoint(tmp_path / "nan.pt", {k: v for k, v in state.items() if k != "format"})
    code, _, err = cli(["eval", tmp_path / "nan.pt"], capsys)
    assert_one_line_error(code, err, "model.head.weight", "non-finite")


# -- 7. eval --limit and --batch-size -----------------------------------------------------------
@pytest.mark.parametrize("flag,value", [("--limit", 0), ("--limit", -1), ("--batch-size", 0),
                                        ("--batch-size", -1)])
def test_eval_refuses_non_positive_counts(run_dir, capsys, flag, value):
    code, _, err = cli(["eval", run_dir / "checkpoint.pt", flag, value], capsys)
    assert_one_line_error(code, err, flag, ">= 1")


def test_eval_limit_evaluates_that_many(run_dir, capsys):
    code, out, err = cli(["eval", run_dir, "--limit", "7", "--batch-size", "3"], capsys)
    assert code == 0 and "(7 test sequences)" in out, err


# -- 8. one seed rule ----------------------------------------------------------------------------
def test_large_seeds_train_and_out_of_range_seeds_are_refused(tmp_path):
    res = train(TINY, TrainConfig(task="digits", max_steps=1, progress=False, seed=2**63 - 1))
    assert math.isfinite(res["final"]["loss"])
    for seed in (2**63, -1, 2.0, True):
        with pytest.raises(ConfigError, match="seed"):
            TrainConfig(seed=seed)


@pytest.mark.parametrize("backend,seed", [("torch", 2**64), ("torch", -1), ("aer", 2**64),
                                          ("aer", -1)])
def test_backends_share_the_seed_rule(backend, seed):
    from qllm.backends import get_backend

    with pytest.raises(BackendError, match=r"seed must be None or an int in \[0, 2\*\*63 - 1\]"):
        get_backend(backend, shots=10, seed=seed)
    get_backend(backend, shots=10, seed=2**63 - 1)  # the largest seed is fine


def test_huge_shot_counts_are_exact_or_refused():
    from qllm.backends import get_backend
    from qllm.circuits import build_circuit

    spec = build_circuit(7, 1)  # 128 outcomes: the multinomial path before
    g = torch.Generator().manual_seed(0)
    x, w = torch.rand(3, 7, generator=g), torch.rand(spec.n_weights, generator=g)
    exact = get_backend("torch").expval(spec, x, w)
    sampled = get_backend("torch", shots=10**12, seed=1).expval(spec, x, w)
    assert (sampled - exact).abs().max() < 1e-4  # standard error ~1e-6 at 10**12 shots
    for name in ("torch", "aer"):
        with pytest.raises(BackendError, match="shots"):
            get_backend(name, shots=2**70)


# -- 9, 10. configs that are not configs ---------------------------------------------------------
@pytest.mark.parametrize("content,needle", [("[1, 2]", "JSON list"), ('{"model": 5}', "model"),
                                            ('{"train": []}', "train"), ("", "empty")])
def test_train_config_file_must_hold_sections(tmp_path, capsys, content, needle):
    path = tmp_path / "c.json"
    path.write_text(content)
    code, _, err = cli(["train", "--config", path, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, needle)


def test_set_quantum_to_a_number_is_a_config_error(tmp_path, capsys):
    code, _, err = cli(["train", "--set", "quantum=5", "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, "quantum")


@pytest.mark.parametrize("scale", [math.nan, -1.0, math.inf, "0.1"])
def test_init_scale_must_be_finite_and_non_negative(scale):
    from qllm.circuits import build_circuit
    from qllm.quantum_layer import QuantumLayer

    with pytest.raises(ConfigError, match="init_scale"):
        QuantumLayer(build_circuit(2, 1), init="normal", init_scale=scale)


# -- 11. ignored inputs ------------------------------------------------------------------------
def test_eval_shots_without_backend_and_cost_seq_len_zero(run_dir, capsys):
    code, _, err = cli(["eval", run_dir / "checkpoint.pt", "--shots", "100"], capsys)
    assert_one_line_error(code, err, "--shots", "--backend")
    code, _, err = cli(["cost", run_dir / "results.json", "--seq-len", "0"], capsys)
    assert_one_line_error(code, err, "--seq-len")
    code, _, err = cli(["cost", run_dir / "results.json", "--seq-len", "17"], capsys)
    assert_one_line_error(code, err, "--seq-len", "[1, 16]")


# -- 12. Ctrl-C ----------------------------------------------------------------------------------
def test_ctrl_c_prints_one_line_with_the_resume_command(tmp_path):
    out = tmp_path / "R"
    # output to files, not pipes: nobody reads a pipe while we wait, and a progress bar that
    # fills one would block the run before its first checkpoint
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        proc = subprocess.Popen([sys.executable, "-m", "qllm.cli", "train", "--out", str(out),
                                 "--set", "train.checkpoint_every=1", "--epochs", "50"],
                                env=ENV, stdout=so, stderr=se, text=True,
                                # as a terminal's Ctrl-C finds it: a test run started in the
                                # background (`make test &`) inherits SIGINT ignored
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    err = (tmp_path / "stderr").read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("qllm: interrupted") and str(out / "checkpoint.pt") in last
    assert f"qllm train --out {out} --resume" in last
    assert not (out / LOCK_NAME).exists()


# -- researcher experience -----------------------------------------------------------------------
def test_an_existing_run_folder_is_not_replaced_silently(run_dir, capsys):
    before = (run_dir / "checkpoint.pt").read_bytes()
    code, _, err = cli(["train", "--out", run_dir], capsys)
    assert_one_line_error(code, err, "already holds a run", "--resume", "--overwrite")
    assert (run_dir / "checkpoint.pt").read_bytes() == before


def test_overwrite_and_the_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--set", "train.max_steps=1", "--set", "train.progress=false"]
    assert cli(args, capsys)[0] == 0
    assert (tmp_path / "runs/latest/checkpoint.pt").exists()
    code, _, err = cli(args, capsys)  # runs/latest is replaced, with a note
    assert code == 0 and "replacing the run in runs/latest" in err
    code, _, err = cli([*args, "--out", "runs/latest", "--overwrite"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("value,section", [("sort", "train"), ("lm", "model")])
def test_bare_task_means_the_config_that_takes_that_value(value, section):
    from argparse import Namespace

    from qllm.cli.common import overrides_from_args

    model_over, train_over = overrides_from_args(Namespace(set=[f"task={value}"]))
    assert (train_over if section == "train" else model_over) == {"task": value}


def test_bare_task_with_an_unknown_value_names_both(tmp_path, capsys):
    code, _, err = cli(["train", "--set", "task=nope", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "train.task", "model.task")


def test_eval_of_a_results_file_says_so(run_dir, capsys):
    code, _, err = cli(["eval", run_dir / "results.json"], capsys)
    assert_one_line_error(code, err, "results file", "qllm cost")


def test_eval_of_a_classical_model_on_aer_says_nothing_quantum_ran(run_dir, capsys):
    code, out, err = cli(["eval", run_dir, "--backend", "aer", "--limit", "4"], capsys)
    assert code == 0 and "nothing quantum ran on aer" in err and "classical" in out


def test_help_lists_the_registries(capsys):
    from qllm.backends import BACKENDS
    from qllm.cost.ledger import GRADIENTS
    from qllm.cost.profiles import PROFILES
    from qllm.cost.targets import TARGETS
    from qllm.data import TASKS

    texts = {}
    for command in ("train", "eval", "cost"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        texts[command] = " ".join(capsys.readouterr().out.split())
    assert all(name in texts["train"] for name in TASKS)
    assert "runs/latest" in texts["train"] and "classical" in texts["train"]
    assert all(name in texts["eval"] for name in BACKENDS) and "fake_" in texts["eval"]
    for names in (TARGETS, PROFILES, GRADIENTS):
        assert all(name in texts["cost"] for name in names)


def test_the_reliability_benchmark_runs_at_toy_size(tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reliability.py"
    spec = importlib.util.spec_from_file_location("reliability_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = bench.main(["--n-embd", "8", "--repeats", "2", "--kills", "3",
                       "--out", str(tmp_path / "r.json")])
    assert data["kills"]["unloadable"] == 0 and data["kills"]["temporaries_left"] == 0
    assert json.loads((tmp_path / "r.json").read_text())["write"]["bytes"] > 0
