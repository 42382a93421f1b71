"""Expectation values through qiskit-ibm-runtime's SamplerV2: each backend call is ONE job of
PUBs, one per measurement setting (and per ZNE noise scale), each PUB carrying every parameter
set of the batch bound (for parameter-shift: every shifted set), plus the readout-calibration
PUBs when readout mitigation is on.

Execution modes: "batch" (default: a ``Batch`` opened on first use, every job inside it),
"session" (a ``Session``: dedicated QPU access between jobs, charged by wall time) or "job"
(each job on its own). On a fake backend the runtime's local testing mode runs the jobs on Aer
with the fake device's noise, offline; ``Batch``/``Session`` are accepted and behave as
"job" there.

Circuits are transpiled once per spec (and setting, and noise scale) and cached; observables are
Z-parities after per-setting basis rotations (``qllm.engine.sampling.measurement_groups``).
"""

from __future__ import annotations

import numpy as np

from qllm.errors import BackendError
from qllm.hardware import mitigation as mit

MODES = ("batch", "session", "job")


class SamplerRoute:
    """Runs a spec's circuits as SamplerV2 PUBs on ``target`` (a BackendV2: fake or real).

    Args:
        target: the backend circuits are transpiled for and run on.
        shots: shots per circuit (per parameter set, setting and noise scale).
        mode: "batch", "session" or "job" (see the module docstring).
        mitigation / zne_scales: see ``qllm.hardware.mitigation``.
        optimization_level / seed_transpiler: transpiler settings.
        seed: seeds the local simulator, one seed per job from a stream (fake backends only).
    """

    def __init__(self, target, shots: int, mode: str = "batch", mitigation: str | None = None,
                 zne_scales=mit.DEFAULT_SCALES, optimization_level: int = 1,
                 seed_transpiler: int = 0, seed: int | None = None, local: bool = True):
        if mode not in MODES:
            raise BackendError(f"mode {mode!r} is not one of {MODES}")
        self.target, self.shots, self.mode, self.local = target, shots, mode, local
        self.mitigation, self.scales = mit.check_mitigation(mitigation, zne_scales)
        self.optimization_level, self.seed_transpiler = optimization_level, seed_transpiler
        self._rng = np.random.default_rng(seed)
        self._circuits: dict = {}
        self._mode_obj = None
        self._sampler = None

    # -- the job-seed stream (saved by QuantumLayer.state_dict through the backend) ---------
    def rng_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    def seed_rng(self, seed: int, path: str) -> None:
        from qllm.rng import derived_seed

        self._rng = np.random.default_rng(derived_seed(seed, path))

    # -- circuits -------------------------------------------------------------------------
    def _transpile(self, qc, level: int | None = None):
        from qiskit import transpile

        return transpile(qc, backend=self.target, seed_transpiler=self.seed_transpiler,
                         optimization_level=self.optimization_level if level is None else level)

    def settings(self, spec):
        """``[(members, {scale: isa circuit measuring spec qubit q into clbit q}, {scale:
        parameter columns})]`` per measurement setting; cached."""
        from qllm.engine.sampling import measurement_circuits

        if spec not in self._circuits:
            if spec.n_qubits > self.target.num_qubits:
                raise BackendError(f"the spec has {spec.n_qubits} qubits but the device has only "
                                   f"{self.target.num_qubits}")
            out = []
            for basis, members, qc in measurement_circuits(spec):
                isa = self._transpile(qc)
                phys = list(isa.layout.final_index_layout())[: spec.n_qubits] if isa.layout \
                    else list(range(spec.n_qubits))
                circuits, columns = {}, {}
                for s in self.scales:
                    c = mit.fold(isa, s) if s > 1 else isa.copy()
                    c = self._measured(c, phys, spec.n_qubits)
                    if s > 1:  # the inverse gates (sxdg, ...) into the native set, nothing merged
                        c = self._transpile(c, level=0)
                    circuits[s], columns[s] = c, _columns(c, spec)
                out.append((members, circuits, columns))
            self._circuits[spec] = (out, phys)
        return self._circuits[spec]

    @staticmethod
    def _measured(isa, phys, n):
        from qiskit import ClassicalRegister

        isa.add_register(ClassicalRegister(n, "meas"))
        isa.measure(phys, range(n))
        return isa

    def calibration_circuits(self, phys, n):
        """All measured qubits in |0>, and all in |1> (X is native on IBM devices)."""
        from qiskit import ClassicalRegister, QuantumCircuit

        out = []
        for flip in (False, True):
            qc = QuantumCircuit(self.target.num_qubits)
            qc.add_register(ClassicalRegister(n, "meas"))
            if flip:
                qc.x(phys)
            qc.measure(phys, range(n))
            out.append(qc)
        return out

    # -- execution ------------------------------------------------------------------------
    def sampler(self):
        if self._sampler is None:
            from qiskit_ibm_runtime import Batch, SamplerV2, Session

            if self.mode == "job":
                self._mode_obj = self.target
            else:
                self._mode_obj = (Batch if self.mode == "batch" else Session)(backend=self.target)
            self._sampler = SamplerV2(mode=self._mode_obj)
        return self._sampler

    def close(self) -> None:
        """Close the Batch / Session (no more jobs can run in it)."""
        if self._mode_obj is not None and self._mode_obj is not self.target:
            self._mode_obj.close()
        self._mode_obj = self._sampler = None

    def run(self, spec, values: np.ndarray) -> tuple[np.ndarray, dict]:
        """Expectation values ``[B, n_obs]`` for parameter rows ``values [B, n_inputs +
        n_weights]``, and what ran: ``{"circuits", "shots", "pubs"}`` (one job)."""
        settings, phys = self.settings(spec)
        B, n = values.shape[0], spec.n_qubits
        pubs, circuits = [], 0
        for _, circs, cols in settings:
            for s in self.scales:
                pubs.append((circs[s], values[:, cols[s]], self.shots))
                circuits += B
        if "readout" in self.mitigation:
            pubs += [(c, None, self.shots) for c in self.calibration_circuits(phys, n)]
            circuits += 2
        result = self._submit(pubs)
        bits = [r.data.meas.to_bool_array(order="little") for r in result]
        signs = mit.sign_vectors(None, n)
        if "readout" in self.mitigation:
            signs = mit.sign_vectors(mit.confusion_from_bits(bits[-2], bits[-1]), n)
        out = np.zeros((B, spec.n_observables))
        k = 0
        for members, _, _ in settings:
            for i in members:
                support = [q for q, c in enumerate(spec.observables[i]) if c != "I"]
                per_scale = np.stack([mit.parity_means(bits[k + j], support, signs)
                                      for j in range(len(self.scales))])
                out[:, i] = mit.extrapolate(per_scale, self.scales)
            k += len(self.scales)
        return out, {"circuits": circuits, "shots": circuits * self.shots, "pubs": len(pubs)}

    def _submit(self, pubs):
        from qllm.hardware.credentials import redact

        sampler = self.sampler()
        if self.local:
            sampler.options.simulator.seed_simulator = int(self._rng.integers(0, 2**31 - 1))
        try:
            return sampler.run(pubs).result()
        except Exception as e:  # noqa: BLE001 - runtime, transpiler and Aer errors alike
            raise BackendError(f"sampler job failed: {type(e).__name__}: {redact(str(e))}") from None


def aer_route(backend, mitigation, zne_scales) -> SamplerRoute | None:
    """A ``SamplerRoute`` on the fake device when mitigation is asked for, else None."""
    from qllm.hardware.mitigation import check_mitigation

    mitigation, _ = check_mitigation(mitigation, zne_scales)
    if mitigation == "none":
        return None
    if backend.device is None or backend.shots is None or not backend.noisy:
        raise BackendError(f"mitigation={mitigation!r} needs a noisy fake device and shots, e.g. "
                           "'aer:fake_manila' with shots=4000")
    return SamplerRoute(backend.fake, backend.shots, "job", mitigation, zne_scales,
                        backend.optimization_level, backend.seed_transpiler, backend.seed)


def _columns(tqc, spec) -> np.ndarray:
    """For each circuit parameter (``tqc.parameters`` order), its column in [inputs | weights]."""
    return np.asarray([(0 if p.vector.name == "x" else spec.n_inputs) + p.index
                       for p in tqc.parameters], dtype=np.int64)
