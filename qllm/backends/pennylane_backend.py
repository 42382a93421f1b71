"""Any PennyLane device: the spec becomes a QNode with the torch interface, batched by parameter
broadcasting (PennyLane splits the batch itself on devices that cannot broadcast).

``pennylane:default.qubit``, ``pennylane:lightning.qubit``, ``pennylane:qiskit.aer`` (with a
``noise_model`` option), ``pennylane:qiskit.remote`` (with a ``backend`` option), and every
hardware plugin's device name. Device options pass through unchanged.

Gradients: PennyLane's own device gradients (``diff_method`` "parameter-shift", "spsa",
"finite-diff", "hadamard") cannot differentiate a broadcast tape with respect to its broadcast
(input) parameters (PennyLane #4462), so their QNode is wrapped in ``qml.transforms.broadcast_expand``:
one tape per sample, and input gradients work. Inference (``torch.no_grad()`` or nothing
requiring a gradient) runs a second QNode with ``diff_method=None``, so adjoint devices
(lightning) compute no derivatives they will not use.

Counting: every call the device's ``execute`` / ``execute_and_compute_derivatives`` receives is
counted in ``stats`` (forward and PennyLane's own shifted circuits alike), the same executions
``qml.Tracker`` reports. Jobs: the Qiskit plugin devices (``qiskit.*``) submit one primitive job
per circuit (``QiskitDevice.execute`` loops over the tapes), so each circuit is a job there; any
other device counts one job per execute call.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from qllm.backends.base import Backend
from qllm.errors import BackendError
from qllm.spec import CircuitSpec

QISKIT_DEFAULT_SHOTS = 1024  # pennylane_qiskit.qiskit_device: default_shots = shots or 1024
# PennyLane's transform-based gradients: they run shifted circuits and cannot shift a broadcast
# parameter, so their QNode gets broadcast_expand
SHIFT_DIFF_METHODS = ("parameter-shift", "spsa", "finite-diff", "hadamard")
# qiskit devices only sample: no backprop or adjoint through them
QISKIT_DIFF_METHODS = ("best", "parameter-shift", "spsa", "finite-diff")


@contextmanager
def default_dtype(dtype: torch.dtype):
    """torch's default dtype set to ``dtype`` inside the block (restored after)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class PennyLaneBackend(Backend):
    """Options:
        device: PennyLane device name (default "default.qubit").
        diff_method: QNode differentiation method ("best", "backprop", "adjoint",
            "parameter-shift", "spsa", "finite-diff", ...). Default "best" (on ``qiskit.*``
            devices: "parameter-shift", the only family they support; "backprop" and
            "adjoint" are refused there).
        gradient_kwargs: passed to the QNode's gradient transform (e.g. ``{"h": 1e-6}`` for
            finite differences, ``{"num_directions": 4, "sampler_rng":
            np.random.default_rng(0)}`` for SPSA).
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
                 shots: int | None = None, gradient_kwargs: dict | None = None,
                 **device_options):
        super().__init__()
        try:
            import pennylane  # noqa: F401
        except ImportError as e:  # pragma: no cover - pennylane is a core dependency
            raise BackendError("the pennylane backend needs `pip install pennylane`") from e
        from qllm.engine.sampling import check_shots

        check_shots(shots)  # the one shot rule: None or an int in [1, 2**53]
        self.device_name = device
        self.name = f"pennylane:{device}"
        self.qiskit = device.startswith("qiskit.")
        if self.qiskit and diff_method not in QISKIT_DIFF_METHODS:
            raise BackendError(
                f"diff_method {diff_method!r} is impossible on {self.name}: Qiskit devices only "
                f"sample (shots={shots!r} draws {shots or QISKIT_DEFAULT_SHOTS} shots per circuit)"
                f"; allowed: {QISKIT_DIFF_METHODS}, or QuantumLayer(gradient='parameter-shift')")
        if self.qiskit and diff_method == "best":
            diff_method = "parameter-shift"  # what "best" would pick, made explicit
        self.diff_method = diff_method
        self.gradient_kwargs = dict(gradient_kwargs or {})
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
            QISKIT_DEFAULT_SHOTS if self.qiskit else None)
        self._qnodes: dict[tuple[CircuitSpec, bool], object] = {}
        self._devices: dict[int, object] = {}

    def qnode(self, spec: CircuitSpec, grad: bool = True):
        """The QNode for ``spec``: with the backend's ``diff_method`` (``grad``), or without a
        gradient (inference). Both share one device per spec."""
        key = (spec, bool(grad))
        if key not in self._qnodes:
            import pennylane as qml

            dev = self.device(spec.n_qubits)
            qnode = qml.QNode(spec.to_pennylane(), dev, interface="torch",
                              diff_method=self.diff_method if grad else None,
                              gradient_kwargs=self.gradient_kwargs if grad else None)
            if self.shots is not None:
                qnode = qml.set_shots(qnode, shots=self.shots)
            if grad and self.diff_method in SHIFT_DIFF_METHODS:
                qnode = qml.transforms.broadcast_expand(qnode)  # input gradients (#4462)
            self._qnodes[key] = qnode
        return self._qnodes[key]

    def device(self, n_qubits: int):
        """One counted PennyLane device per width."""
        if n_qubits not in self._devices:
            import pennylane as qml

            try:
                dev = qml.device(self.device_name, wires=n_qubits, **self.resolved_options())
            except BackendError:
                raise
            except Exception as e:  # PennyLane raises DeviceError and others
                from qllm.hardware.credentials import redact

                raise BackendError(f"PennyLane could not create device {self.device_name!r}: "
                                   f"{type(e).__name__}: {redact(str(e))}") from None
            self._count_executions(dev)
            self._devices[n_qubits] = dev
        return self._devices[n_qubits]

    def _count_executions(self, dev) -> None:
        """Wrap the device's execute methods so ``stats`` counts every circuit it runs."""
        from pennylane.devices.qubit.sampling import get_num_shots_and_executions
        from pennylane.tape import QuantumScript

        def record(circuits):
            batch = (circuits,) if isinstance(circuits, QuantumScript) else circuits
            n = sum(get_num_shots_and_executions(c)[0] for c in batch)
            self.stats.add(n, shots=n * (self.sampled_shots or 0),
                           jobs=len(batch) if self.qiskit else 1)

        for method in ("execute", "execute_and_compute_derivatives"):
            original = getattr(dev, method, None)
            if original is None:
                continue

            def counted(circuits, *args, _original=original, **kwargs):
                record(circuits)
                return _original(circuits, *args, **kwargs)

            setattr(dev, method, counted)

    def _passed_generators(self) -> dict:
        """NumPy generators the caller passed (SPSA's ``sampler_rng``, a device ``seed``):
        PennyLane draws from those very objects, so their states are this backend's."""
        import numpy as np

        return {f"{where}.{k}": g for where, opts in (("gradient_kwargs", self.gradient_kwargs),
                                                     ("device_options", self.device_options))
                for k, g in opts.items() if isinstance(g, np.random.Generator)}

    def rng_state(self) -> dict:
        return {k: g.bit_generator.state for k, g in self._passed_generators().items()}

    def set_rng_state(self, state: dict) -> None:
        generators = self._passed_generators()
        for k, s in state.items():
            if k in generators:
                generators[k].bit_generator.state = s

    def resolved_options(self) -> dict:
        """Device options with qiskit backend / noise-model names turned into objects (once)."""
        if self._resolved_options is None:
            from qllm.hardware.fake_devices import fake_backend, fake_noise_model, is_fake_name

            opts = dict(self.device_options)
            backend = opts.get("backend")
            if isinstance(backend, str) and self.qiskit:
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
        grad = torch.is_grad_enabled() and (inputs.requires_grad or weights.requires_grad)
        qnode = self.qnode(spec, grad)
        # default.qubit builds |0...0> on the default device: put it on the inputs' GPU; and the
        # torch interface turns the plain floats some devices return (lightning) into tensors
        # of the default dtype: float32 would round float64 results to 1e-8.
        dtype = inputs.dtype if inputs.dtype in (torch.float32, torch.float64) else None
        with torch.device(inputs.device), default_dtype(dtype or torch.get_default_dtype()):
            res = qnode(inputs, weights)
        if not isinstance(res, (list, tuple)):
            res = [res]
        out = torch.stack([torch.as_tensor(r).reshape(-1) for r in res], -1)
        if out.shape[0] != B:  # no input-dependent gate: nothing was broadcast
            out = out.expand(B, -1)
        return out.to(inputs.dtype)
