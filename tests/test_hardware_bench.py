"""benchmarks/hardware_routes.py runs end to end at toy size (its full run is in
benchmarks/README.md)."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "hardware_routes.py"


def test_hardware_routes_counts_jobs_and_mitigation(tmp_path):
    spec = importlib.util.spec_from_file_location("hardware_routes", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.main(["--tokens", "1", "--inputs", "6", "--shots", "500", "--skip-plugin",
                        "--out", str(tmp_path / "h.json")])
    ibm = next(r for r in data["measured_step"] if r["route"].startswith("ibm"))
    assert ibm["jobs"] == 2 and ibm["pubs"] == 2  # forward + shifted circuits, one PUB each
    plugin, batch = data["projected_step"][0], data["projected_step"][1]
    assert plugin["jobs_per_step"] == plugin["circuits_per_step"] > batch["jobs_per_step"]
    assert [r["mitigation"] for r in data["mitigation"]] == ["none", "readout", "zne",
                                                           "readout+zne"]
    assert (tmp_path / "h.json").exists()
