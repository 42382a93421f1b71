"""The benchmark scripts run end to end at toy sizes (their full runs are in benchmarks/README.md)."""

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_max_qubits_trains_until_the_stop_and_records_memory(tmp_path):
    out = tmp_path / "mq.json"
    data = load("max_qubits").main(["--start", "3", "--stop", "4", "--batch", "8",
                                    "--out", str(out)])
    assert data["largest_n"] == 4
    assert [r["status"] for r in data["rows"]] == ["trained", "trained"]
    for row in data["rows"]:
        assert row["chunk"] == 8 and row["peak"] > row["estimate_bytes"] > 0  # peak: whole process
    assert json.loads(out.read_text())["largest_n"] == 4


def test_max_qubits_stops_at_the_first_refused_n(tmp_path):
    mq = load("max_qubits")
    total_gb = mq.total_memory("cpu") / 2**30
    # leave 1 MiB of budget: the 20-qubit estimate (GiBs) is refused without running anything
    data = mq.main(["--start", "20", "--stop", "21", "--reserve-gb", str(total_gb - 2**-10),
                    "--out", str(tmp_path / "mq.json")])
    assert data["largest_n"] is None
    assert len(data["rows"]) == 1 and data["rows"][0]["status"].startswith("refused")


def test_max_qubits_chunked_reports_the_chunk(tmp_path):
    data = load("max_qubits").main(["--start", "3", "--stop", "3", "--batch", "8",
                                    "--chunk-size", "4", "--out", str(tmp_path / "mq.json")])
    assert data["rows"][0]["status"] == "trained" and data["rows"][0]["chunk"] == 4


def test_auto_choice_times_every_path_and_names_autos(tmp_path):
    data = load("auto_choice").main(["--qubits", "3", "--batch", "16", "--repeats", "1",
                                     "--out", str(tmp_path / "ac.json")])
    (row,) = data["rows"]
    assert set(row["ms"]) == {"gates", "fused", "core", "kron", "pauli"} and row["auto"] in row["ms"]
    assert row["auto_over_best"] >= 1.0 and data["worst_auto_over_best"] == row["auto_over_best"]


def test_attribution_compares_every_hybrid_with_its_controls(tmp_path):
    data = load("attribution").main(["--preset", "tiny", "--tasks", "meaning", "--seeds", "2",
                                     "--workers", "1", "--work", str(tmp_path / "w"),
                                     "--out", str(tmp_path / "a.json")])
    assert data["failed"] == [] and data["runs"] == 2 * 5
    assert [c["control"] for c in data["comparisons"]] == ["width", "params", "bottleneck",
                                                           "no_entanglement"]
    assert all(c["n"] == 2 and c["verdict"] for c in data["comparisons"])
    assert json.loads((tmp_path / "a.json").read_text())["seeds"] == [0, 1]


def test_engine_speed_times_every_path_and_counts_their_flops(tmp_path):
    es = load("engine_speed")
    assert es.main(["--qubits", "8", "--batch", "16", "--repeats", "1", "--peer-repeats", "1",
                    "--out", str(tmp_path / "es.json")]) == 0
    (row,) = json.loads((tmp_path / "es.json").read_text())["rows"]
    assert set(row["native"]) == {"auto", "fused", "gates", "core", "kron", "pauli",
                                  "QuantumLayer"}
    assert set(row["flop_rates"]) == {"fused", "gates", "core", "kron", "pauli"}
    assert row["peers"]["default.qubit"]["median_s"] > 0 and row["matmul_flop_rate"] > 0
    # the counts, by hand at n = 8, B = 16: the dense core's three real [16, 256] x [256, 512]
    # products; the Kronecker core's last layer (RY only: real blocks on the complex state's
    # real view) as two 16 x 16 blocks, three products each
    from qllm.circuits import build_circuit

    spec = build_circuit(8, 2)
    assert es.path_flops(spec, 16, "core") == 3 * 2 * 16 * 256 * 512
    assert es.path_flops(spec, 16, "kron") == 2 * 3 * 4 * 16 * 256 * 16
    # the Heisenberg core: C [rows, UA] on the a-half rows, then the product with the b-rows
    from qllm.engine.pauli import pauli_program
    from qllm.engine.plan import make_plan

    rows, UA = pauli_program(make_plan(spec)).shape
    assert es.path_flops(spec, 16, "pauli") == 3 * 16 * (2 * rows * UA + 2 * rows)
