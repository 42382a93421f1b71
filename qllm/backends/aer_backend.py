"""Qiskit Aer primitives as a backend: exact, shots, or a fake IBM device's calibrated noise.

``aer`` runs the spec's ``to_qiskit()`` circuit, transpiled once per spec and cached, with every
parameter set of a batch bound into one job (per measurement setting, one circuit with a
parameter-value array ``[B, n_params]``: Aer ``parameter_binds``, or one SamplerV2 PUB), never
one job per token.

Modes:
- exact (``shots=None``, no device): statevector expectation values from Aer's
  ``save_expectation_value``, as Aer's ``EstimatorV2`` computes them (run directly, because
  EstimatorV2's result assembly is quadratic in the number of parameter sets).
- shots (``shots=N``): observables are grouped into qubit-wise commuting measurement settings
  (``qllm.engine.sampling.measurement_groups``); each setting is measured with N shots; seeded
  and reproducible (``seed``). Two samplers (``sampling=``):
  "probabilities" (default): one Aer job returns every parameter set's exact outcome distribution
  (``save_probabilities``; density matrix when noisy), the device's readout errors are applied as
  its calibrated confusion matrices, and N shots are drawn with a seeded numpy multinomial. This
  is the distribution Aer's own measurement sampling draws from (terminal measurements), without
  Aer's per-shot bookkeeping, which costs ~2-3 ms per circuit at 1024 shots.
  "sampler": Aer ``SamplerV2`` with measurements in the circuit, shot by shot (slower; the
  reference the default is tested against).
- device noise (``aer:fake_manila`` or ``device="fake_manila"``): the circuit is transpiled to the
  fake backend (layout, routing, native gates) and simulated with
  ``AerSimulator.from_backend`` (gate errors, thermal relaxation and readout errors from its
  calibration). Exact noisy values (``shots=None``) are the expectation values of the exact
  noisy outcome distributions (density matrix, readout errors applied): the mean the shot
  estimates scatter around. Only single-qubit readout errors are modelled (all that
  ``NoiseModel.from_backend`` makes).
- ``method``: "automatic" (default), "statevector" or "density_matrix"
  (``aer:density_matrix`` is short for ``AerBackend(method="density_matrix")``).

Aer's OpenMP threads can slow torch in the same process: qiskit is imported lazily and
Aer runs with ``max_parallel_threads=1`` unless told otherwise.

Gradients: none by autograd (``supports_backprop=False``); use ``QuantumLayer(...,
gradient="parameter-shift" | "spsa")`` (``qllm.backends.gradients``), which runs all shifted circuits of
a step as one job.

>>> from qllm.backends import get_backend
>>> get_backend("aer:fake_manila", shots=1024, seed=7).name
'aer:fake_manila'
"""

from __future__ import annotations

import numpy as np
import torch

from qllm.backends.base import Backend
from qllm.errors import BackendError
from qllm.rng import derived_seed
from qllm.spec import CircuitSpec
from qllm.validate import is_int

METHODS = ("automatic", "statevector", "density_matrix")
SAMPLINGS = ("probabilities", "sampler")
# Gates the ideal simulator gets. qiskit-aer 0.17.2 silently drops the parameter binds of crx, cry,
# crz and cp (a job of B parameter sets returns one result), so controlled rotations are
# decomposed into these first.
AER_BASIS = ("rx", "ry", "rz", "p", "u", "h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg",
             "cx", "cy", "cz", "swap", "rxx", "ryy", "rzz", "measure")


def _positive_int_or_none(value, name: str):
    if value is not None and (not is_int(value) or value <= 0):
        raise BackendError(f"{name} must be None or a positive int, got {value!r}")
    return value


class AerBackend(Backend):
    """Options:
        device: a fake backend name (``"fake_manila"``; see
            ``qllm.hardware.fake_devices.available_fake_backends()``), a method name, or None (ideal).
        shots: None (exact expectation values) or a positive int per measurement setting.
        seed: seeds the simulator's sampling; the backend draws one seed per job from a stream
            started at ``seed``, so a rebuilt backend repeats the same counts. None: random.
        method: "automatic", "statevector" or "density_matrix".
        noise: apply the device's noise model (default True; False keeps layout and routing only).
        optimization_level: transpiler optimization level 0-3 (default 1).
        seed_transpiler: transpiler seed (default 0: the layout is reproducible).
        max_parallel_threads: Aer's OpenMP threads (default 1, see the module docstring).
        sampling: "probabilities" (default) or "sampler" (``SamplerV2``), see the module docstring.
        mitigation / zne_scales: "readout", "zne" or "readout+zne" with a fake device and shots:
            runs as SamplerV2 PUBs, one job per call, as ``ibm:fake_<name>`` does (``qllm.hardware.runtime``).
    """

    supports_backprop = False

    def __init__(self, device: str | None = None, shots: int | None = None,
                 seed: int | None = None, method: str = "automatic", noise: bool = True,
                 optimization_level: int = 1, seed_transpiler: int = 0,
                 max_parallel_threads: int = 1, sampling: str = "probabilities",
                 mitigation: str | None = None, zne_scales=(1, 3, 5)):
        super().__init__()
        if device in METHODS:
            method, device = device, None
        if method not in METHODS:
            raise BackendError(f"method {method!r} is not one of {METHODS}")
        self.shots = _positive_int_or_none(shots, "shots")
        from qllm.engine.sampling import check_shots
        from qllm.seeds import check_seed

        check_seed(seed, "seed", BackendError, allow_none=True)
        check_seed(seed_transpiler, "seed_transpiler", BackendError)
        check_shots(self.shots)
        if optimization_level not in (0, 1, 2, 3):
            raise BackendError(f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}")
        _positive_int_or_none(max_parallel_threads, "max_parallel_threads")
        if sampling not in SAMPLINGS:
            raise BackendError(f"sampling {sampling!r} is not one of {SAMPLINGS}")
        self.sampling = sampling
        self.device = None
        if device is not None:
            from qllm.hardware.fake_devices import fake_backend, normalize_fake_name

            self.fake = fake_backend(device)  # unknown names fail here, listing the known ones
            self.device = normalize_fake_name(device)
        self.noisy = self.device is not None and bool(noise)
        if self.noisy and (self.shots is None or sampling == "probabilities"):
            if method == "statevector":
                raise BackendError("exact outcome distributions with device noise need "
                                   "method='density_matrix' (or 'automatic'); use "
                                   "sampling='sampler' for statevector trajectories")
            method = "density_matrix"
        self.method = method
        self.name = f"aer:{self.device}" if self.device else "aer"
        self.seed = seed
        self.optimization_level = optimization_level
        self.seed_transpiler = seed_transpiler
        self.max_parallel_threads = max_parallel_threads
        self._rng = np.random.default_rng(seed)
        self._simulator = None
        self._circuits: dict[tuple, tuple] = {}
        from qllm.hardware.runtime import aer_route

        self.mitigated = aer_route(self, mitigation, zne_scales)

    # -- setup (lazy: qiskit and Aer load on first use) -----------------------------------
    @property
    def simulator(self):
        if self._simulator is None:
            from qiskit_aer import AerSimulator

            # (runtime_parameter_bind_enable would be 2x faster but fails to load circuits whose
            # parameters sit in expressions or the global phase: "param position out of range")
            opts = {"method": self.method, "max_parallel_threads": self.max_parallel_threads}
            if self.noisy:
                self._simulator = AerSimulator.from_backend(self.fake, **opts)
            else:
                self._simulator = AerSimulator(**opts)
        return self._simulator

    def _check_width(self, spec: CircuitSpec) -> None:
        if self.device is not None and spec.n_qubits > self.fake.num_qubits:
            raise BackendError(f"the spec has {spec.n_qubits} qubits but {self.device} has only "
                               f"{self.fake.num_qubits}; use fewer qubits or a larger device")

    def _transpile(self, qc):
        from qiskit import transpile

        opts = {"optimization_level": self.optimization_level,
                "seed_transpiler": self.seed_transpiler}
        if self.device is not None:
            return transpile(qc, backend=self.fake, **opts)
        return transpile(qc, basis_gates=list(AER_BASIS), **opts)

    def _columns(self, tqc, spec: CircuitSpec) -> np.ndarray:
        """For each circuit parameter (in ``tqc.parameters`` order), its column in
        ``[inputs | weights]``."""
        cols = []
        for p in tqc.parameters:
            base = 0 if p.vector.name == "x" else spec.n_inputs
            cols.append(base + p.index)
        return np.asarray(cols, dtype=np.int64)

    def estimator_circuit(self, spec: CircuitSpec):
        """``(transpiled circuit ending in one save_expectation_value per observable (mapped to
        its layout), parameter columns)``; cached."""
        key = ("estimator", spec)
        if key not in self._circuits:
            import qiskit_aer  # noqa: F401 - adds QuantumCircuit.save_expectation_value

            self._check_width(spec)
            tqc = self._transpile(spec.to_qiskit())
            for i, obs in enumerate(spec.qiskit_observables()):
                tqc.save_expectation_value(obs.apply_layout(tqc.layout), range(tqc.num_qubits),
                                           label=f"obs{i}")
            self._circuits[key] = (tqc, self._columns(tqc, spec))
        return self._circuits[key]

    def setting_circuits(self, spec: CircuitSpec, kind: str = "probabilities"):
        """One transpiled circuit per measurement setting (basis rotations appended), cached:
        ``[(basis, members, circuit, parameter columns, physical qubit of each spec qubit)]``.
        ``kind``: "probabilities" (ends in ``save_probabilities``; outcome bit q = spec qubit q)
        or "sampler" (measures spec qubit q into clbit q)."""
        from qllm.engine.sampling import measurement_circuits

        key = (kind, spec)
        if key not in self._circuits:
            import qiskit_aer  # noqa: F401 - adds QuantumCircuit.save_probabilities
            from qiskit import ClassicalRegister

            self._check_width(spec)
            out = []
            for basis, members, qc in measurement_circuits(spec):
                if kind == "sampler":
                    qc.add_register(ClassicalRegister(spec.n_qubits, "meas"))
                    qc.measure(range(spec.n_qubits), range(spec.n_qubits))
                tqc = self._transpile(qc)
                layout = tqc.layout.final_index_layout() if tqc.layout else range(spec.n_qubits)
                phys = list(layout)[: spec.n_qubits]
                if kind == "probabilities":
                    tqc.save_probabilities(phys, label="probs")
                out.append((basis, members, tqc, self._columns(tqc, spec), phys))
            self._circuits[key] = out
        return self._circuits[key]

    # -- execution -----------------------------------------------------------------------
    def _values(self, inputs, weights) -> np.ndarray:
        x = inputs.detach().to("cpu", torch.float64).numpy()
        w = weights.detach().to("cpu", torch.float64).numpy()
        return np.concatenate([x, np.broadcast_to(w, (x.shape[0], w.shape[0]))], axis=1)

    def _expval(self, spec, inputs, weights):
        values = self._values(inputs, weights)  # [B, n_inputs + n_weights]
        B = values.shape[0]
        if self.mitigated is not None:
            self._check_width(spec)
            out, ran = self.mitigated.run(spec, values)
            self.stats.add(ran["circuits"], shots=ran["shots"], jobs=1)
            return torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)
        if self.shots is None and self.noisy:
            out = self._noisy_exact(spec, values)
            circuits = B
        elif self.shots is None:
            out = self._exact(spec, values)
            circuits = B
        else:
            out, circuits = self._sampled(spec, values)
        self.stats.add(circuits, shots=circuits * (self.shots or 0), jobs=1)
        return torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)

    def _job_error(self, e: Exception) -> BackendError:
        from qllm.hardware.credentials import redact

        return BackendError(f"{self.name} job failed: {type(e).__name__}: {redact(str(e))}")

    def _run_binds(self, circuits: list, columns: list, values: np.ndarray):
        """Run ``circuits`` with every row of ``values`` bound, as ONE Aer job. Returns the
        result and, per circuit, the index of its first experiment and its experiment count
        (B, or 1 for a circuit without parameters, whose single result serves every sample)."""
        B = values.shape[0]
        binds = [{p: values[:, c] for p, c in zip(tqc.parameters, cols)}
                 for tqc, cols in zip(circuits, columns)]
        try:
            if any(len(cols) for cols in columns):
                result = self.simulator.run(circuits, parameter_binds=binds).result()
            else:
                result = self.simulator.run(circuits).result()
        except Exception as e:  # noqa: BLE001 - AerError, QiskitError, ValueError...
            raise self._job_error(e) from None
        if not result.success:  # e.g. too many qubits for memory: Aer reports, not raises
            failed = next((r.status for r in result.results if not r.success), result.status)
            raise self._job_error(RuntimeError(failed))
        spans, start = [], 0
        for cols in columns:
            count = B if len(cols) else 1
            spans.append((start, count))
            start += count
        return result, spans

    def _exact(self, spec, values) -> np.ndarray:
        """Ideal expectation values ``[B, n_obs]``: what Aer's EstimatorV2 computes (the same
        save_expectation_value instructions, one job), without its result assembly, which is
        quadratic in the number of parameter sets (12 s for 8192 of them)."""
        tqc, cols = self.estimator_circuit(spec)
        result, ((start, count),) = self._run_binds([tqc], [cols], values)
        evs = np.array([[np.real(result.data(start + j)[f"obs{i}"])
                         for i in range(spec.n_observables)] for j in range(count)])
        return np.array(np.broadcast_to(evs, (values.shape[0], spec.n_observables)))

    def _job_seed(self) -> int:
        return int(self._rng.integers(0, 2**31 - 1))

    def rng_state(self) -> dict:  # the job-seed stream, and the mitigated route's
        return {"jobs": self._rng.bit_generator.state,
                **({"mitigated": self.mitigated.rng_state()} if self.mitigated else {})}

    def set_rng_state(self, state: dict) -> None:
        if "jobs" in state:
            self._rng.bit_generator.state = state["jobs"]
        if self.mitigated is not None and "mitigated" in state:
            self.mitigated.set_rng_state(state["mitigated"])

    def seed_rng(self, seed: int, path: str) -> None:
        self.seed = derived_seed(seed, path)
        self._rng = np.random.default_rng(self.seed)
        if self.mitigated is not None:
            self.mitigated.seed_rng(seed, f"{path}.mitigated")

    def _bits(self, spec, values):
        """Run every measurement setting in one job: ``[(basis, members, bits [B, shots, n])]``,
        ``bits[..., q]`` being spec qubit q's outcome."""
        from qiskit_aer.primitives import SamplerV2

        groups = self.setting_circuits(spec, "sampler")
        B, n = values.shape[0], spec.n_qubits
        pubs = []
        for _, _, tqc, cols, _ in groups:
            if len(cols):
                pubs.append((tqc, values[:, cols], self.shots))
            else:  # no parameters: B * shots draws of one circuit, split per sample below
                pubs.append((tqc, None, self.shots * B))
        sampler = SamplerV2.from_backend(self.simulator, seed=self._job_seed(),
                                         default_shots=self.shots)
        try:
            results = sampler.run(pubs).result()
        except Exception as e:  # noqa: BLE001 - AerError, QiskitError, ValueError...
            raise self._job_error(e) from None
        out = []
        for (basis, members, *_), res in zip(groups, results):
            packed = res.data.meas.array.reshape(B, self.shots, -1)  # big-endian bytes
            bits = np.unpackbits(packed, axis=-1)[..., ::-1][..., :n]  # column q = clbit q
            out.append((basis, members, bits))
        return out

    def _readout_matrices(self, phys: list[int]) -> list[np.ndarray | None]:
        """Per physical qubit, its calibrated ``P(measured | prepared)`` matrix (or None)."""
        if not self.noisy:
            return [None] * len(phys)
        if "readout" not in self._circuits:  # to_dict takes seconds on 100+ qubit devices
            table = self._circuits["readout"] = {}
            for err in self.simulator.options.noise_model.to_dict().get("errors", []):
                if err["type"] == "roerror" and len(err["gate_qubits"][0]) == 1:
                    table[err["gate_qubits"][0][0]] = np.asarray(err["probabilities"], dtype=float)
        return [self._circuits["readout"].get(q) for q in phys]

    def _probabilities(self, spec, values):
        """One job: ``[(basis, members, probs [B, 2^n])]`` with readout errors applied; outcome
        index bit q is spec qubit q (little-endian, as Qiskit)."""
        groups = self.setting_circuits(spec)
        B, n = values.shape[0], spec.n_qubits
        result, spans = self._run_binds([g[2] for g in groups], [g[3] for g in groups], values)
        out = []
        for (basis, members, _, _, phys), (start, count) in zip(groups, spans):
            probs = np.stack([np.asarray(result.data(start + j)["probs"], dtype=float)
                              for j in range(count)])
            probs = np.broadcast_to(probs, (B, 2**n)).reshape([B] + [2] * n)
            for q, m in enumerate(self._readout_matrices(phys)):
                if m is not None:  # axis 1 + (n-1-q) holds spec qubit q (little-endian)
                    probs = np.moveaxis(np.moveaxis(probs, 1 + n - 1 - q, -1) @ m, -1, 1 + n - 1 - q)
            out.append((basis, members, probs.reshape(B, 2**n)))
        return out

    @staticmethod
    def _parity_signs(label: str) -> np.ndarray:
        """``[2^n]``: +-1 parity on the label's non-I qubits of each outcome index whose bit q is
        spec qubit q (Qiskit's little-endian order, hence the reversed label)."""
        from qllm.engine.sampling import parity_signs

        return parity_signs((label[::-1],))[:, 0].numpy()

    def _noisy_exact(self, spec, values) -> np.ndarray:
        out = np.zeros((values.shape[0], spec.n_observables))
        for _, members, probs in self._probabilities(spec, values):
            for i in members:
                out[:, i] = probs @ self._parity_signs(spec.observables[i])
        return out

    def _draw(self, probs: np.ndarray) -> np.ndarray:
        """Counts ``[B, 2^n]`` of ``shots`` draws per row."""
        p = np.clip(probs, 0, None)
        p = p / p.sum(-1, keepdims=True)
        return self._rng.multinomial(self.shots, p)

    def _sampled(self, spec, values):
        B = values.shape[0]
        out = np.zeros((B, spec.n_observables))
        if self.sampling == "sampler":
            runs = self._bits(spec, values)
            for _, members, bits in runs:
                for i in members:
                    support = [q for q, c in enumerate(spec.observables[i]) if c != "I"]
                    parity = bits[..., support].sum(-1) % 2  # [B, shots]
                    out[:, i] = 1.0 - 2.0 * parity.mean(-1)
            return out, B * len(runs)
        runs = self._probabilities(spec, values)
        for _, members, probs in runs:
            freq = self._draw(probs) / self.shots  # [B, 2^n]
            for i in members:
                out[:, i] = freq @ self._parity_signs(spec.observables[i])
        return out, B * len(runs)

    def counts(self, spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor) -> list[dict]:
        """Computational-basis counts per sample, ``[{bitstring: count}]`` with spec qubit 0 as
        the first character (qllm's order, not Qiskit's). Needs ``shots``."""
        from qllm.backends.aer_counts import counts

        return counts(self, spec, inputs, weights)
