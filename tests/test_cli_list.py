"""The CLI tells what it can do (``qllm list``, ``--version``, choices in help) from the registries,
and user registrations survive into other commands through ``--import`` and ``qllm.plugins``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import qllm
from qllm.cli import build_parser, main
from qllm.cli.list import KINDS, listing

PLUGIN = textwrap.dedent('''
    """A user's ansatz: RY on every qubit, then a CZ ladder, per layer."""
    from qllm.circuits import register_ansatz
    from qllm.spec import CircuitSpec, Op, w


    def cz_ladder(n_qubits, n_layers):
        """RY rotations, then a ladder of CZ gates."""
        ops = []
        for layer in range(n_layers):
            ops += [Op("RY", (q,), (w(layer * n_qubits + q),)) for q in range(n_qubits)]
            ops += [Op("CZ", (q, q + 1)) for q in range(n_qubits - 1)]
        return CircuitSpec(n_qubits, ops, name="cz_ladder")


    register_ansatz("cz_ladder", cz_ladder)
''')


def names_listed(text: str) -> list[str]:
    """The names of a one-kind listing: the first word of every indented line."""
    return [line.split()[0] for line in text.splitlines()[1:] if line.startswith("  ")]


@pytest.mark.parametrize("kind", ["tasks", "backends", "encodings", "ansatze", "presets",
                                  "targets", "profiles"])
def test_list_names_come_from_the_registry(kind, capsys):
    from qllm.backends import BACKENDS
    from qllm.circuits import ANSATZE, ENCODINGS
    from qllm.cost.profiles import PROFILES
    from qllm.cost.targets import TARGETS
    from qllm.data import TASKS
    from qllm.experiments.bench import PRESET_NAMES

    registry = {"tasks": TASKS, "backends": BACKENDS, "encodings": ENCODINGS,
                "ansatze": ANSATZE, "presets": dict.fromkeys(PRESET_NAMES), "targets": TARGETS,
                "profiles": PROFILES}[kind]
    assert main(["list", kind]) == 0
    assert names_listed(capsys.readouterr().out) == list(registry)


def test_list_devices_are_the_fake_ibm_devices(capsys):
    from qiskit_ibm_runtime import fake_provider

    assert main(["list", "devices"]) == 0
    names = names_listed(capsys.readouterr().out)
    assert {"fake_manila", "fake_torino", "fake_brisbane"} <= set(names)
    # counted another way: one name per FakeXxx(V2) class of the provider
    classes = {a for a in dir(fake_provider) if a.startswith("Fake") and isinstance(
        getattr(fake_provider, a), type) and a not in ("FakeBackendV2", "FakeProviderForBackendV2",
                                                       "FakeProvider")}
    assert len(names) == len({a.removesuffix("V2") for a in classes}) > 40


def test_a_registered_ansatz_is_listed(monkeypatch):
    from qllm.circuits import ANSATZE

    monkeypatch.setitem(ANSATZE, "my_ladder", lambda n, l: None)
    assert "my_ladder" in names_listed(listing("ansatze"))
    assert "my_ladder" in listing()


def test_adapters_come_from_the_pretrained_registry_or_say_none_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "qllm.pretrained.adapters", None)  # import fails
    assert listing("adapters").startswith("no adapters")
    assert "adapters (adapter): none installed" in listing()
    monkeypatch.undo()
    from qllm.pretrained.adapters import ADAPTERS, QUANTUM_ADAPTERS

    assert names_listed(listing("adapters")) == list(ADAPTERS)
    assert {"quantum_lora", "lora"} <= set(ADAPTERS) and "quantum_lora" in QUANTUM_ADAPTERS


def test_every_kind_in_the_overview(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in KINDS:
        assert f"\n{kind} (" in "\n" + out


def test_unknown_kind_exits_2_with_the_choices(capsys):
    with pytest.raises(SystemExit) as e:
        main(["list", "gadgets"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "gadgets" in err and "ansatze" in err and "Traceback" not in err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"qllm {qllm.__version__}"


def test_bench_preset_choices_in_help_and_refused(capsys):
    from qllm.experiments.bench import PRESET_NAMES

    bench = build_parser()._subparsers._group_actions[0].choices["bench"]
    assert "{" + ",".join(PRESET_NAMES) + "}" in bench.format_help()
    assert "smoke test" in bench.format_help()
    with pytest.raises(SystemExit) as e:
        main(["bench", "--preset", "quik"])
    assert e.value.code == 2
    assert "quick" in capsys.readouterr().err


def _qllm(args, cwd, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "qllm.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def custom_checkpoint(tmp_path_factory):
    """A checkpoint of a model whose quantum FFN uses the user's 'cz_ladder' ansatz."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "cz_ladder_plugin.py").write_text(PLUGIN)
    sys.path.insert(0, str(root))
    try:
        import cz_ladder_plugin  # noqa: F401 - registers cz_ladder in this process

        from qllm.config import ModelConfig, QuantumConfig, TrainConfig
        from qllm.train import train

        cfg = ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1, ffn="quantum",
                          quantum=QuantumConfig(n_qubits=2, n_layers=1, ansatz="cz_ladder"))
        train(cfg, TrainConfig(task="parity", task_options={"n": 40, "seq_len": 4}, epochs=1,
                               max_steps=1, progress=False), out_dir=root / "run")
    finally:
        sys.path.remove(str(root))
        from qllm.circuits import ANSATZE

        ANSATZE.pop("cz_ladder", None)
        sys.modules.pop("cz_ladder_plugin", None)
    return root


def test_custom_ansatz_needs_its_module_and_import_loads_it(custom_checkpoint):
    ckpt = str(custom_checkpoint / "run" / "checkpoint.pt")
    bare = _qllm(["cost", ckpt], custom_checkpoint)
    assert bare.returncode == 2 and "cz_ladder" in bare.stderr
    assert "Traceback" not in bare.stderr
    for args in (["cost", ckpt], ["eval", ckpt, "--limit", "4"],
                 ["train", "--out", str(custom_checkpoint / "run"), "--resume"]):
        done = _qllm(["--import", "cz_ladder_plugin", *args], custom_checkpoint)
        assert done.returncode == 0, (args, done.stderr[-2000:])


def test_entry_point_plugins_load_at_start_up(custom_checkpoint, tmp_path):
    dist = tmp_path / "qllm_cz_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: qllm-cz-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[qllm.plugins]\ncz = cz_ladder_plugin\n")
    path = os.pathsep.join([str(tmp_path), str(custom_checkpoint)])
    listed = _qllm(["list", "ansatze"], tmp_path, {"PYTHONPATH": path})
    assert listed.returncode == 0 and "cz_ladder" in names_listed(listed.stdout)
    ckpt = str(custom_checkpoint / "run" / "checkpoint.pt")
    assert _qllm(["cost", ckpt], tmp_path, {"PYTHONPATH": path}).returncode == 0
    # a plugin that fails to import names itself in one line, exit status 2
    (dist / "entry_points.txt").write_text("[qllm.plugins]\nbroken = no_such_plugin_module\n")
    broken = _qllm(["list"], tmp_path, {"PYTHONPATH": path})
    assert broken.returncode == 2
    assert "broken" in broken.stderr and len(broken.stderr.strip().splitlines()) == 1


def test_tiny_preset_says_it_is_a_smoke_test(monkeypatch, capsys):
    import qllm.experiments.bench as bench

    calls = []
    monkeypatch.setattr(bench, "run_preset", lambda *a, **k: calls.append((a, k)))
    assert main(["bench", "--preset", "tiny", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert calls and calls[0][0] == ("tiny",)
    assert out.count("smoke test") == 2 and "chance level" in out
    assert main(["bench", "--preset", "quick", "--no-progress"]) == 0
    assert "smoke test" not in capsys.readouterr().out


def test_every_listed_preset_is_accepted_by_qllm_bench_and_has_a_runner():
    import importlib

    from qllm.cli import build_parser
    from qllm.experiments.bench import OWN_PRESETS, PRESET_NAMES

    assert {"quick", "peft", "experts", "compression", "multimodal"} <= set(PRESET_NAMES)
    for name in PRESET_NAMES:
        assert build_parser().parse_args(["bench", "--preset", name]).preset == name
    for module, _ in OWN_PRESETS.values():
        assert callable(importlib.import_module(module).run_preset)


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_bench_refuses_workers_below_one(workers, capsys):
    assert main(["bench", "--preset", "tiny", "--dry-run", "--workers", workers]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--workers" in err[0]
