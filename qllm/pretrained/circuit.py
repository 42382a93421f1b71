"""The VQC every quantum adapter uses (LoRA branch, Houlsby adapter, head, prompt generator)."""

from __future__ import annotations

from torch import nn


def adapter_vqc(opts: dict, reupload: bool = False) -> nn.Module:
    """A QuantumLayer of ``opts["n_qubits"]`` qubits and ``opts["n_layers"]`` layers of
    ``opts["ansatz"]`` after an angle encoding (re-uploaded before every layer with
    ``reupload``), its weights drawn near zero so the adapter starts near the identity."""
    from qllm.circuits import build_circuit
    from qllm.quantum_layer import QuantumLayer

    spec = build_circuit(opts["n_qubits"], opts["n_layers"], "angle", opts["ansatz"], reupload)
    return QuantumLayer(spec, init="normal", init_scale=0.1)  # near identity: a gentle start
