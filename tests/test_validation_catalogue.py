"""A catalogue of malformed inputs across the public API. Each must raise a QllmError subclass
(of the expected kind) whose message names the offending argument; none may return NaN.

Entry points: CircuitSpec, Op, Param, gates, backends (names, options, tensors), QuantumLayer,
configs, model forward, data / load_task, checkpoints, train(), and the CLI (exit status 2 and
the message on stderr).
"""

from __future__ import annotations

import math

import pytest
import torch

from qllm.backends import get_backend
from qllm.checkpoint import load_checkpoint, save_checkpoint
from qllm.circuits import build_circuit
from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.data import load_task
from qllm.errors import (
    BackendError,
    CheckpointError,
    ConfigError,
    DataError,
    InputError,
    InputTypeError,
    QllmError,
    SpecError,
)
from qllm.gates import gate
from qllm.model import HybridTransformer
from qllm.quantum_layer import QuantumLayer
from qllm.spec import CircuitSpec, Op, Param, inp, w

SPEC = build_circuit(2, 1)  # 2 inputs, 4 weights, 2 observables
X = torch.rand(3, 2)
W = torch.rand(SPEC.n_weights)
TORCH = get_backend("torch")
TOKENS = HybridTransformer(ModelConfig(vocab_size=5, n_classes=2, block_size=4, n_embd=8,
                                       n_head=2, n_layer=1))
FEATURES = HybridTransformer(ModelConfig(input_dim=3, n_classes=2, block_size=4, n_embd=8,
                                         n_head=2, n_layer=1, ffn="quantum",
                                         quantum={"n_qubits": 2, "n_layers": 1}))
LAYER = QuantumLayer(SPEC)


def _nan(t=X):
    t = t.clone()
    t[0, 0] = math.nan
    return t


CASES = [
    # -- circuit specs, ops, params, gates --------------------------------------------------
    ("spec n_qubits=0", lambda: CircuitSpec(0, ()), SpecError, "n_qubits"),
    ("spec n_qubits float", lambda: CircuitSpec(2.0, ()), SpecError, "n_qubits"),
    ("spec op off the register", lambda: CircuitSpec(2, (Op("RY", (5,), (w(0),)),)), SpecError,
     "qubit"),
    ("spec op not an Op", lambda: CircuitSpec(2, ("RY",)), SpecError, "ops"),
    ("spec observable length", lambda: CircuitSpec(2, (), observables=("ZZZ",)), SpecError,
     "observable"),
    ("spec observable letters", lambda: CircuitSpec(2, (), observables=("AB",)), SpecError,
     "observable"),
    ("spec n_inputs too small", lambda: CircuitSpec(2, (Op("RY", (0,), (inp(3),)),), n_inputs=1),
     SpecError, "n_inputs"),
    ("op unknown gate", lambda: Op("FOO", (0,)), SpecError, "gate"),
    ("op wrong qubit count", lambda: Op("CNOT", (0,)), SpecError, "qubit"),
    ("op repeated qubit", lambda: Op("CNOT", (1, 1)), SpecError, "distinct"),
    ("op missing parameter", lambda: Op("RY", (0,)), SpecError, "parameter"),
    ("param kind", lambda: Param("bogus"), SpecError, "kind"),
    ("param negative index", lambda: w(-1), SpecError, "index"),
    ("param nan scale", lambda: w(0, scale=math.nan), SpecError, "scale"),
    ("gate lookup", lambda: gate("NOPE"), SpecError, "NOPE"),
    ("build_circuit ansatz", lambda: build_circuit(2, 1, ansatz="nope"), SpecError, "ansatz"),
    # -- backends -------------------------------------------------------------------------------
    ("backend unknown name", lambda: get_backend("nope"), BackendError, "nope"),
    ("backend not a string", lambda: get_backend(42), BackendError, "backend"),
    ("backend unknown option", lambda: get_backend("torch", bogus=1), BackendError, "bogus"),
    ("backend strategy", lambda: get_backend("torch", strategy="x"), BackendError, "strategy"),
    ("backend shots", lambda: get_backend("torch", shots=0), BackendError, "shots"),
    ("backend memory budget", lambda: get_backend("torch", memory_budget_gb=-1), BackendError,
     "memory_budget_gb"),
    ("backend torch suffix", lambda: get_backend("torch:gpu"), BackendError, "torch:gpu"),
    ("backend fake device", lambda: get_backend("aer:fake_nowhere"), BackendError, "nowhere"),
    ("backend pennylane device", lambda: get_backend("pennylane:no.such.device").expval(SPEC, X, W),
     BackendError, "no.such.device"),
    ("expval NaN inputs", lambda: TORCH.expval(SPEC, _nan(), W), InputError, "inputs"),
    ("expval int inputs", lambda: TORCH.expval(SPEC, X.long(), W), InputTypeError, "inputs"),
    ("expval list inputs", lambda: TORCH.expval(SPEC, X.tolist(), W), InputTypeError, "inputs"),
    ("expval inputs width", lambda: TORCH.expval(SPEC, torch.rand(3, 5), W), InputError, "inputs"),
    ("expval inputs 3-D", lambda: TORCH.expval(SPEC, torch.rand(2, 3, 2), W), InputError, "inputs"),
    ("expval weights length", lambda: TORCH.expval(SPEC, X, torch.rand(3)), InputError, "weights"),
    ("expval inf weights", lambda: TORCH.expval(SPEC, X, torch.full_like(W, math.inf)),
     InputError, "weights"),
    ("expval weights on another device", lambda: TORCH.expval(SPEC, X, W.to("meta")),
     InputError, "device"),
    ("pennylane NaN inputs", lambda: get_backend("pennylane").expval(SPEC, _nan(), W), InputError,
     "inputs"),
    # -- QuantumLayer ---------------------------------------------------------------------------
    ("layer spec type", lambda: QuantumLayer("ry"), ConfigError, "spec"),
    ("layer init", lambda: QuantumLayer(SPEC, init="bogus"), ConfigError, "init"),
    ("layer gradient", lambda: QuantumLayer(SPEC, gradient="magic"), ConfigError, "gradient"),
    ("layer backend", lambda: QuantumLayer(SPEC, backend="nope"), BackendError, "nope"),
    ("layer inf x", lambda: LAYER(torch.tensor([[math.inf, 0.0]])), InputError, "x"),
    ("layer float16 x", lambda: LAYER(X.half()), InputTypeError, "x"),
    ("layer complex x", lambda: LAYER(X.to(torch.complex64)), InputTypeError, "x"),
    ("layer x width", lambda: LAYER(torch.rand(4, 3)), InputError, "x"),
    ("layer scalar x", lambda: LAYER(torch.tensor(0.5)), InputError, "x"),
    # -- configs --------------------------------------------------------------------------------
    ("config attn kind", lambda: ModelConfig(input_dim=4, attn="bogus"), ConfigError, "attn"),
    ("config ffn kind", lambda: ModelConfig(input_dim=4, ffn="bogus"), ConfigError, "ffn"),
    ("config n_head divides", lambda: ModelConfig(input_dim=4, n_embd=10, n_head=3), ConfigError,
     "n_embd"),
    ("config n_qubits", lambda: QuantumConfig(n_qubits=0), ConfigError, "n_qubits"),
    ("config n_qubits str", lambda: ModelConfig(input_dim=4, quantum={"n_qubits": "4"}),
     ConfigError, "n_qubits"),
    ("config encoding", lambda: QuantumConfig(encoding="bogus"), ConfigError, "encoding"),
    ("config backend", lambda: QuantumConfig(backend="nope"), ConfigError, "backend"),
    ("config unknown field", lambda: ModelConfig.from_dict({"nope": 1}), ConfigError, "nope"),
    ("config override", lambda: ModelConfig(input_dim=4).override({"quantum.bogus": 1}),
     ConfigError, "bogus"),
    ("config dropout", lambda: ModelConfig(input_dim=4, dropout=1.5), ConfigError, "dropout"),
    ("config n_embd bool", lambda: ModelConfig(input_dim=4, n_embd=True), ConfigError, "n_embd"),
    ("train lr", lambda: TrainConfig(lr=-1), ConfigError, "lr"),
    ("train lr nan", lambda: TrainConfig(lr=math.nan), ConfigError, "lr"),
    ("train batch_size", lambda: TrainConfig(batch_size=0), ConfigError, "batch_size"),
    ("train task", lambda: TrainConfig(task="nope"), ConfigError, "task"),
    ("train seed", lambda: TrainConfig(seed="x"), ConfigError, "seed"),
    ("train grad_clip", lambda: TrainConfig(grad_clip=-1.0), ConfigError, "grad_clip"),
    ("train weight_decay", lambda: TrainConfig(weight_decay=-0.1), ConfigError, "weight_decay"),
    ("train min_lr_frac", lambda: TrainConfig(min_lr_frac=2.0), ConfigError, "min_lr_frac"),
    ("train device", lambda: TrainConfig(device="tpu"), ConfigError, "device"),
    ("train task_options", lambda: TrainConfig(task_options=[1]), ConfigError, "task_options"),
    # -- model forward --------------------------------------------------------------------------
    ("model float x for tokens", lambda: TOKENS(torch.rand(2, 4)), InputError, "x"),
    ("model token range", lambda: TOKENS(torch.tensor([[0, 9]])), InputError, "token"),
    ("model too long", lambda: TOKENS(torch.zeros(1, 5, dtype=torch.long)), InputError,
     "block_size"),
    ("model NaN features", lambda: FEATURES(torch.full((1, 2, 3), math.nan)), InputError, "x"),
    ("model feature width", lambda: FEATURES(torch.rand(1, 2, 4)), InputError, "x"),
    ("model targets shape", lambda: TOKENS(torch.zeros(2, 3, dtype=torch.long),
                                           torch.zeros(3, dtype=torch.long)), InputError,
     "targets"),
    ("model targets range", lambda: TOKENS(torch.zeros(2, 3, dtype=torch.long),
                                           torch.tensor([0, 7])), InputError, "targets"),
    ("model targets dtype", lambda: TOKENS(torch.zeros(2, 3, dtype=torch.long),
                                           torch.rand(2)), InputError, "targets"),
    ("model x on another device", lambda: TOKENS(torch.zeros(1, 2, dtype=torch.long,
                                                             device="meta")), InputError, "x"),
    ("model config type", lambda: HybridTransformer({"input_dim": 4}), ConfigError, "config"),
    # -- data ------------------------------------------------------------------------------------
    ("task name", lambda: load_task("nope"), DataError, "nope"),
    ("task option", lambda: load_task("parity", bogus=1), DataError, "bogus"),
    ("task n", lambda: load_task("parity", n=0), DataError, "n"),
    ("task seq_len", lambda: load_task("copy", length=-2), DataError, "length"),
    ("task patch", lambda: load_task("digits", patch=3), DataError, "patch"),
    ("text without path", lambda: load_task("text"), DataError, "path"),
    ("text missing file", lambda: load_task("text", path="/no/such/corpus.txt"), DataError,
     "corpus.txt"),
]


@pytest.mark.parametrize("name,call,error,needle", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_raises_a_named_qllm_error(name, call, error, needle):
    with pytest.raises(QllmError) as info:
        out = call()
        if torch.is_tensor(out):  # a silent NaN would be the worst outcome
            assert torch.isfinite(out).all(), f"{name} returned non-finite values"
    assert isinstance(info.value, error), f"{name}: {type(info.value).__name__}: {info.value}"
    assert needle.lower() in str(info.value).lower(), f"{name}: {info.value}"


def test_catalogue_is_large():
    assert len(CASES) >= 30


# -- files: data, checkpoints, resume -----------------------------------------------------------
def test_bad_files_raise_named_errors(tmp_path):
    binary = tmp_path / "corpus.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 50)
    short = tmp_path / "short.txt"
    short.write_text("abc")
    cases = [
        (lambda: load_task("text", path=binary), DataError, "corpus.bin"),
        (lambda: load_task("text", path=short), DataError, "characters"),
        (lambda: load_task("text", path=tmp_path), DataError, str(tmp_path)),
        (lambda: load_checkpoint(tmp_path / "none.pt"), CheckpointError, "none.pt"),
        (lambda: save_checkpoint(tmp_path / "c.pt", {"x": object()}), CheckpointError, "x"),
    ]
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(save_checkpoint(tmp_path / "ok.pt", {"w": torch.rand(100)})
                          .read_bytes()[:300])
    cases.append((lambda: load_checkpoint(truncated), CheckpointError, "trunc.pt"))
    from qllm.train import train

    cfg = TrainConfig(task="parity", max_steps=1, progress=False)
    cases.append((lambda: train(ModelConfig(input_dim=4), cfg, out_dir=tmp_path / "run",
                                resume=True), CheckpointError, "checkpoint"))
    cases.append((lambda: train({"input_dim": 4}, cfg), ConfigError, "model_cfg"))
    unsaveable = ModelConfig(input_dim=4, quantum={"backend_options": {"noise": object()}})
    cases.append((lambda: train(unsaveable, cfg, out_dir=tmp_path / "run2"), CheckpointError,
                  "backend_options"))
    for call, error, needle in cases:
        with pytest.raises(error, match=None) as info:
            call()
        assert needle.lower() in str(info.value).lower(), str(info.value)


# -- CLI: exit status 2 and the message ----------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["train", "--set", "nokey"], "key=value"),
    (["train", "--set", "bogus=1"], "bogus"),
    (["train", "--set", "train.lr=-1"], "lr"),
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--task", "nope"], "task"),
    (["train", "--config", "/no/such/config.json"], "config.json"),
    (["eval", "/no/such/checkpoint.pt"], "checkpoint.pt"),
    (["cost", "/no/such/model.json"], "model.json"),
    (["eval", "{tmp}/foreign.pt"], "lacks"),
    (["train", "--resume"], "checkpoint"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_cli_reports_bad_arguments(argv, needle, tmp_path, capsys):
    from qllm.cli import main

    save_checkpoint(tmp_path / "foreign.pt", {"weights": torch.zeros(2)})  # ours, but no model
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("qllm: error:") and needle in err, err


# -- every config field: malformed values raise ConfigError naming the field ------------------
FIELD_CASES = {
    ModelConfig: {
        "task": ["nope", 5, ["lm"]], "vocab_size": [1, "5", 2.5], "input_dim": [0, "4", 2**40],
        "n_classes": [1, 2.0], "block_size": [0, None], "n_embd": [-8, True],
        "n_head": [0, "2"], "n_layer": [0, 1.5], "mlp_ratio": [0, [4]], "attn": ["nope", 1],
        "ffn": ["nope", None], "dropout": [1.0, -0.1, "x", math.nan], "quantum": [5, "x", [1]],
        "streams": ["x", [1], [{"kind": "nope"}, {"kind": "nope"}]],
        "moe": [5, [1], {"n_experts": 0}, {"top_k": 9}, {"nope": 1}],
    },
    QuantumConfig: {
        "n_qubits": [0, 1025, "4"], "n_layers": [0, 2**40], "encoding": ["nope", 3],
        "ansatz": ["nope", {}], "reupload": ["yes", 1], "backend": ["nope", 5],
        "backend_options": [[1], "x"], "gradient": ["magic", None], "spsa_samples": [0, 1.5],
        "init": ["bogus", 0], "entangling": ["yes", 1, None],
    },
    TrainConfig: {
        "task": ["nope", 1], "task_options": [[1], "x"], "epochs": [0, -1, "3"],
        "batch_size": [0, 2**40], "lr": [0, -1, math.inf, "x"], "weight_decay": [-1, math.nan],
        "warmup_frac": [1.0, -0.5], "min_lr_frac": [1.5, -1], "grad_clip": [-1, math.inf],
        "seed": [-1, 2**63, 1.5, True], "eval_every": [0, None], "checkpoint_every": [-1, "x"],
        "max_steps": [-1, 2.5], "device": ["tpu9", 5, 2**70], "progress": ["yes", None],
        "distill": [5, {"temperature": 0}, {"alpha": 2}, {"nope": 1}], "val_frac": [0.6, -0.1, "x"],
    },
}


def _build(cls, field, value):
    if cls is QuantumConfig:
        return ModelConfig(input_dim=4, quantum={field: value})
    if cls is ModelConfig:
        extra = {} if field in ("input_dim", "vocab_size") else {"input_dim": 4}
        return ModelConfig(**{**extra, field: value})
    return TrainConfig(**{field: value})


def test_every_config_field_is_in_the_catalogue():
    import dataclasses

    for cls, cases in FIELD_CASES.items():
        assert {f.name for f in dataclasses.fields(cls)} == set(cases), cls.__name__


@pytest.mark.parametrize("cls,field,value", [
    (cls, field, value) for cls, cases in FIELD_CASES.items() for field, values in cases.items()
    for value in values], ids=lambda v: v.__name__ if isinstance(v, type) else repr(v)[:20])
def test_malformed_config_fields_raise_config_errors(cls, field, value):
    with pytest.raises(ConfigError) as info:
        _build(cls, field, value)
    names = {"vocab_size": "vocab_size", "input_dim": "input_dim"}
    assert names.get(field, field) in str(info.value), str(info.value)


# -- every flag of train, eval and cost ----------------------------------------------------------
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    from qllm.train import train

    root = tmp_path_factory.mktemp("cli")
    train(ModelConfig(input_dim=4, n_embd=8, n_head=2, n_layer=1),
          TrainConfig(task="digits", max_steps=1, progress=False), out_dir=root / "R")
    (root / "model.json").write_text('{"input_dim": 4, "n_embd": 8, "n_head": 2}')
    (root / "list.json").write_text("[1]")
    (root / "file").write_text("x")
    return root


CLI_FLAG_CASES = [
    (["train", "--config", "{root}/list.json"], "JSON list"),
    (["train", "--set", "quantum=5"], "quantum"),
    (["train", "--task", "nope"], "task"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "ten"], "--epochs"),
    (["train", "--seed", "-1"], "seed"),
    (["train", "--seed", str(2**63)], "seed"),
    (["train", "--device", "tpu9"], "device"),
    (["train", "--out", "{root}/file"], "not a folder"),
    (["train", "--out", "{root}/R"], "already holds a run"),
    (["train", "--out", "{root}/none", "--resume"], "checkpoint"),
    (["train", "--out", "{root}/R", "--resume", "--overwrite"], "--overwrite"),
    (["train", "--bogus"], "--bogus"),
    (["eval", "{root}/none.pt"], "none.pt"),
    (["eval", "{root}/R", "--backend", "nope"], "nope"),
    (["eval", "{root}/R", "--backend", "aer", "--shots", "0"], "--shots"),
    (["eval", "{root}/R", "--backend", "aer", "--shots", str(2**60)], "--shots"),
    (["eval", "{root}/R", "--backend", "aer", "--seed", "-1"], "--seed"),
    (["eval", "{root}/R", "--seed", "3"], "--backend"),
    (["eval", "{root}/R", "--limit", "0"], "--limit"),
    (["eval", "{root}/R", "--batch-size", "-1"], "--batch-size"),
    (["eval", "{root}/R/results.json"], "results file"),
    (["cost", "{root}/none.json"], "none.json"),
    (["cost", "{root}/list.json"], "JSON list"),
    (["cost", "{root}/model.json", "--seq-len", "0"], "--seq-len"),
    (["cost", "{root}/model.json", "--shots", "0"], "--shots"),
    (["cost", "{root}/model.json", "--target", "nope"], "target"),
    (["cost", "{root}/model.json", "--gradient", "nope"], "gradient"),
    (["cost", "{root}/model.json", "--profile", "nope"], "profile"),
    (["cost", "{root}/model.json", "--json", "--seq-len", "x"], "--seq-len"),
    (["cost", "{root}/model.json", "--batch-size", "0"], "--batch-size"),
    (["cost", "{root}/model.json", "--steps-per-epoch", "0"], "--steps-per-epoch"),
    (["cost", "{root}/model.json", "--epochs", "0"], "--epochs"),
    (["cost", "{root}/model.json", "--steps", "0"], "--steps"),
    (["cost", "{root}/model.json", "--route", "nope"], "route 'nope'"),
    (["cost", "{root}/model.json", "--mitigation", "zne"], "--route"),
    (["cost", "{root}/model.json", "--route", "ibm:x", "--mitigation", "magic"], "magic"),
]


def test_every_cli_flag_is_in_the_catalogue():
    from qllm.cli import build_parser

    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    for command in ("train", "eval", "cost"):
        flags = {s for a in sub.choices[command]._actions for s in a.option_strings} - {"-h",
                                                                                        "--help"}
        covered = {a for argv, _ in CLI_FLAG_CASES if argv[0] == command for a in argv}
        assert flags <= covered, f"{command}: {sorted(flags - covered)} not in the catalogue"


@pytest.mark.parametrize("argv,needle", CLI_FLAG_CASES, ids=[" ".join(a) for a, _ in CLI_FLAG_CASES])
def test_every_cli_flag_refuses_bad_values_in_one_line(argv, needle, cli_files, capsys):
    from qllm.cli import main

    argv = [a.replace("{root}", str(cli_files)) for a in argv]
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(cli_files / "new")]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("qllm"), err
    assert needle in err, err
    assert not (cli_files / "new").exists() or not any((cli_files / "new").iterdir())
