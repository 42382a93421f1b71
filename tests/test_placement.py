"""Per-block placement: ``attn`` and ``ffn`` take one kind per block; the config round-trips, the
model puts each sublayer where it says, and a per-block model trains, checkpoints, resumes
bit-identically (in a new call, from the checkpoint alone) and reports its cost; the
validation split holds out training data and leaves the test split alone."""

import json

import pytest
import torch

import qllm.train as T
from qllm.cli import main
from qllm.config import ModelConfig, QuantumConfig, TrainConfig
from qllm.data import load_task, with_validation
from qllm.errors import ConfigError, DataError
from qllm.layers import MLP, QuantumFFN, SelfAttention
from qllm.layers.quantum import QuantumAttention
from tests.resume_helpers import train_and_resume

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = dict(input_dim=4, n_embd=8, n_head=2, n_layer=2, attn=["quantum", "classical"],
             ffn=["classical", "quantum"], quantum=dict(n_qubits=3, n_layers=1))
TRAIN = dict(task="parity", task_options={"n": 120, "seq_len": 6}, batch_size=8, epochs=2,
             checkpoint_every=7, progress=False, seed=5)


def test_blocks_get_the_listed_kinds_and_the_config_round_trips():
    cfg = ModelConfig.from_dict(MODEL)
    model = T.HybridTransformer(cfg)
    assert isinstance(model.blocks[0].mixer, QuantumAttention)
    assert isinstance(model.blocks[0].ffn, MLP)
    assert isinstance(model.blocks[1].mixer, SelfAttention)
    assert isinstance(model.blocks[1].ffn, QuantumFFN)
    assert len(model.quantum_layers()) == 3 * 2 + 1  # q, k, v per head in block 0, one FFN
    assert ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.quantum_sublayers and cfg.block_kinds(1) == ("classical", "quantum")


@pytest.mark.parametrize("bad, match", [({"ffn": ["quantum"]}, "n_layer=2"),
                                        ({"ffn": ["classical", "quantum2"]}, r"ffn\[1\]"),
                                        ({"attn": [1, "classical"]}, r"attn\[0\]"),
                                        ({"ffn": {"a": 1}}, "one per block")])
def test_bad_placements_name_the_field(bad, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict({**MODEL, **bad})


def test_per_block_model_trains_checkpoints_resumes_and_reports_cost(tmp_path, monkeypatch):
    mcfg, tcfg = ModelConfig.from_dict(MODEL), TrainConfig.from_dict(TRAIN)
    # a crash right after the mid-epoch checkpoint of step 14
    whole, resumed = train_and_resume(monkeypatch, tmp_path, mcfg, tcfg, crash_step=14)
    assert resumed["steps"] == whole["steps"]
    saved = json.loads((tmp_path / "split" / "results.json").read_text())
    assert saved["model_config"]["ffn"] == ["classical", "quantum"]
    # the cost report sees the quantum sublayers where they are
    names = sorted(q["name"] for q in saved["cost"]["quantum"])
    assert names[-1] == "blocks.1.ffn.vqc" and all(n.startswith("blocks.0.mixer")
                                                   for n in names[:-1])
    # learning curves on the validation split; the test split only in "final"
    assert all("val_accuracy" in h and not any(k.startswith("test") for k in h)
               for h in saved["history"])
    assert saved["validation"]["accuracy"] == saved["history"][-1]["val_accuracy"]


def test_cli_takes_a_per_block_list(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--task", "parity", "--set", 'train.task_options={"n": 40}',
               "--set", 'ffn=["classical","quantum"]', "--set", "quantum.n_qubits=2",
               "--set", "n_embd=8", "--set", "n_head=2", "--set", "train.max_steps=2",
               "--set", "train.progress=false", "--out", str(out)])
    assert rc in (0, None)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["model_config"]["ffn"] == ["classical", "quantum"]
    assert main(["train", "--resume", "--out", str(out)]) in (0, None)  # rebuilds the same model
    assert main(["train", "--set", 'ffn=["quantum"]', "--out", str(tmp_path / "x")]) == 2
    assert "n_layer=2" in capsys.readouterr().err


def test_validation_split_is_seeded_and_leaves_test_alone():
    task = load_task("digits")
    a, b, c = (with_validation(task, 0.1, s) for s in (0, 0, 1))
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    assert len(a.x_val) == round(0.1 * len(task.x_train))
    assert len(a.x_train) + len(a.x_val) == len(task.x_train)
    assert torch.equal(a.x_test, task.x_test)
    # every held-out example was a training example, and none of them is still trained on
    train_rows = {tuple(r.flatten().tolist()) for r in task.x_train}
    assert all(tuple(r.flatten().tolist()) in train_rows for r in a.x_val)
    assert len(torch.cat([a.x_train, a.x_val]).unique(dim=0)) == len(task.x_train.unique(dim=0))
    with pytest.raises(DataError, match="val_frac"):
        with_validation(task, 0.9, 0)
    with pytest.raises(ConfigError, match="val_frac"):
        TrainConfig(val_frac=0.7)


def test_quantum_config_entangling_must_be_a_bool():
    with pytest.raises(ConfigError, match="entangling"):
        QuantumConfig(entangling="no")
