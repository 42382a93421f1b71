"""``ibm:<backend>``: IBM Quantum through qiskit-ibm-runtime's SamplerV2, in Batch execution
mode by default, one job per backend call (``qllm.hardware.runtime``).

- ``ibm:fake_manila`` (any ``fake_<name>``): offline, the runtime's local testing mode (Aer with
  the fake device's calibrated noise). What the tests use.
- ``ibm:ibm_<name>``: a real device, with the token from ``QISKIT_IBM_TOKEN`` or the account
  saved by ``QiskitRuntimeService.save_account`` (``qllm.hardware.credentials``); tokens are
  never taken from options, logged or written.

Gradients: hardware has no autograd (``supports_backprop=False``); use ``QuantumLayer(...,
gradient="parameter-shift" | "spsa")``: the forward is one job, and all shifted circuits of a
backward pass are one more job (one PUB per measurement setting with every shifted set bound).

>>> from qllm.backends import get_backend
>>> get_backend("ibm:fake_manila", shots=256).execution_mode
'batch'
"""

from __future__ import annotations

import numpy as np
import torch

from qllm.backends.base import Backend
from qllm.errors import BackendError
from qllm.hardware.mitigation import DEFAULT_SCALES
from qllm.validate import is_int


class IBMBackend(Backend):
    """Options:
        device: ``fake_<name>`` (local testing mode) or an IBM device name (``ibm_torino``).
        shots: shots per circuit (default 1024; hardware cannot give exact values).
        mode: "batch" (default), "session" or "job".
        mitigation: "none" (default), "readout", "zne" or "readout+zne"; zne_scales: odd
            noise-scale factors (default (1, 3, 5)).
        seed: seeds the local simulator (fake backends). optimization_level / seed_transpiler:
            transpiler settings. channel / instance: passed to ``QiskitRuntimeService``.
    """

    supports_backprop = False

    def __init__(self, device: str | None = None, shots: int | None = 1024, mode: str = "batch",
                 mitigation: str | None = None, zne_scales=DEFAULT_SCALES,
                 seed: int | None = None, optimization_level: int = 1, seed_transpiler: int = 0,
                 channel: str | None = None, instance: str | None = None):
        super().__init__()
        from qllm.hardware.fake_devices import fake_backend, is_fake_name, normalize_fake_name
        from qllm.hardware.runtime import SamplerRoute

        if not device:
            raise BackendError("the ibm backend needs a device: 'ibm:fake_manila' (offline) or "
                               "'ibm:ibm_<name>' (a real device)")
        if not is_int(shots) or shots <= 0:
            raise BackendError(f"shots must be a positive int on IBM hardware (it only samples),"
                               f" got {shots!r}")
        if optimization_level not in (0, 1, 2, 3):
            raise BackendError(f"optimization_level must be 0, 1, 2 or 3, got "
                               f"{optimization_level!r}")
        self.local = is_fake_name(device)
        if self.local:
            target = fake_backend(device)
            self.device = normalize_fake_name(device)
        else:
            from qllm.hardware.credentials import ibm_backend

            target, self.device = ibm_backend(device, channel, instance), device
        self.name = f"ibm:{self.device}"
        self.shots = shots
        self.route = SamplerRoute(target, shots, mode, mitigation, zne_scales, optimization_level,
                                  seed_transpiler, seed, local=self.local)
        self.execution_mode, self.mitigation = mode, self.route.mitigation
        self.pubs = 0  # PUBs inside the jobs that ``stats`` counts

    def _expval(self, spec, inputs, weights):
        x = inputs.detach().to("cpu", torch.float64).numpy()
        w = weights.detach().to("cpu", torch.float64).numpy()
        values = np.concatenate([x, np.broadcast_to(w, (x.shape[0], w.shape[0]))], axis=1)
        out, ran = self.route.run(spec, values)
        self.stats.add(ran["circuits"], shots=ran["shots"], jobs=1)
        self.pubs += ran["pubs"]
        return torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)

    def rng_state(self) -> dict:
        return {"route": self.route.rng_state()}

    def set_rng_state(self, state: dict) -> None:
        if "route" in state:
            self.route.set_rng_state(state["route"])

    def seed_rng(self, seed: int, path: str) -> None:
        self.route.seed_rng(seed, f"{path}.route")

    def close(self) -> None:
        """Close the Batch / Session."""
        self.route.close()
