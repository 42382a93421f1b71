"""Any PennyLane device: the spec becomes a QNode with the torch interface, batched by parameter
broadcasting (PennyLane splits the batch itself on devices that cannot broadcast).

``pennylane:default.qubit``, ``pennylane:lightning.qubit``, ``pennylane:qiskit.aer`` (with a
``noise_model`` option), ``pennylane:qiskit.remote`` (with a ``backend`` option), and every
hardware plugin's device name. Device options pass through unchanged.
"""

from __future__ import annotations

import torch

from qllm.backends.base import Backend
from qllm.errors import BackendError
from qllm.spec import CircuitSpec

QISKIT_DEFAULT_SHOTS = 1024  # pennylane_qiskit.qiskit_device: default_shots = shots or 1024


class PennyLaneBackend(Backend):
    """Options:
        device: PennyLane device name (default "default.qubit").
        diff_method: QNode differentiation method ("best", "backprop", "adjoint",
            "parameter-shift", "spsa", ...). Default "best".
        shots: None for exact expectations, or an int. Qiskit devices (``qiskit.*``) cannot
            compute exact values: with None the plugin samples its default of 1024 shots, and
            ``stats`` counts those.
        **device_options: passed to ``qml.device``. Configs are JSON, so qiskit devices also
            take names: ``backend="fake_manila"`` (a fake IBM backend object),
            ``backend="ibm_<name>"`` on ``qiskit.remote`` (real hardware; credentials from
            QISKIT_IBM_TOKEN or the saved account, see ``qllm.hardware.credentials``) and
            ``noise_model="fake_manila"`` (its calibrated ``NoiseModel``). Options that look
            like credentials (``token``, ...) are refused.
    """

    def __init__(self, device: str = "default.qubit", diff_method: str = "best",
                 shots: int | None = None, **device_options):
        super().__init__()
        try:
            import pennylane  # noqa: F401
        except ImportError as e:  # pragma: no cover - pennylane is a core dependency
            raise BackendError("the pennylane backend needs `pip install pennylane`") from e
        from qllm.engine.sampling import check_shots

        check_shots(shots)  # the one shot rule: None or an int in [1, 2**53]
        self.device_name = device
        self.name = f"pennylane:{device}"
        self.diff_method = diff_method
        self.shots = shots
        from qllm.hardware.credentials import check_no_credentials

        check_no_credentials(device_options, self.name)
        self.device_options = device_options
        self._resolved_options: dict | None = None
        # Gradients reach torch through the QNode: by backprop on exact simulators, or by
        # PennyLane's own parameter-shift / SPSA / finite differences with shots.
        self.supports_backprop = shots is None or diff_method not in ("backprop", None)
        # shots actually drawn per circuit (Qiskit devices sample even when shots is None)
        self.sampled_shots = shots if shots is not None else (
            QISKIT_DEFAULT_SHOTS if device.startswith("qiskit.") else None)
        self._qnodes: dict[CircuitSpec, object] = {}

    def qnode(self, spec: CircuitSpec):
        if spec not in self._qnodes:
            import pennylane as qml

            try:
                dev = qml.device(self.device_name, wires=spec.n_qubits, **self.resolved_options())
            except BackendError:
                raise
            except Exception as e:  # PennyLane raises DeviceError and others
                from qllm.hardware.credentials import redact

                raise BackendError(f"PennyLane could not create device {self.device_name!r}: "
                                   f"{type(e).__name__}: {redact(str(e))}") from None
            qnode = qml.QNode(spec.to_pennylane(), dev, interface="torch",
                              diff_method=self.diff_method)
            if self.shots is not None:
                qnode = qml.set_shots(qnode, shots=self.shots)
            self._qnodes[spec] = qnode
        return self._qnodes[spec]

    def resolved_options(self) -> dict:
        """Device options with qiskit backend / noise-model names turned into objects (once)."""
        if self._resolved_options is None:
            from qllm.hardware.fake_devices import fake_backend, fake_noise_model, is_fake_name

            opts = dict(self.device_options)
            backend = opts.get("backend")
            if isinstance(backend, str) and self.device_name.startswith("qiskit."):
                if is_fake_name(backend):
                    opts["backend"] = fake_backend(backend)
                elif self.device_name == "qiskit.remote":
                    from qllm.hardware.credentials import ibm_backend

                    opts["backend"] = ibm_backend(backend)
            if isinstance(opts.get("noise_model"), str):
                opts["noise_model"] = fake_noise_model(opts["noise_model"])
            self._resolved_options = opts
        return self._resolved_options

    def _expval(self, spec, inputs, weights):
        B = inputs.shape[0]
        weights = weights.to(inputs.device, inputs.dtype)
        if inputs.device.type == "cuda":
            # default.qubit builds |0...0> on the default device: put it on the inputs' GPU
            with torch.device(inputs.device):
                res = self.qnode(spec)(inputs, weights)
        else:
            res = self.qnode(spec)(inputs, weights)
        out = torch.stack([torch.as_tensor(r).reshape(-1) for r in res], -1)
        if out.shape[0] != B:  # no input-dependent gate: nothing was broadcast
            out = out.expand(B, -1)
        self.stats.add(B, shots=B * (self.sampled_shots or 0), jobs=1)
        return out.to(inputs.dtype)
