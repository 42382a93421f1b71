"""Qiskit's ``BaseEstimatorV2`` on qllm's engine: ``qllm.qiskit.Estimator()``.

One PUB (circuit, observables, parameter values) is one engine call: every parameter set of the
PUB is a row of the batch, every distinct Pauli word of its observables an observable of the spec;
the observables' coefficients and the PUB's broadcasting are applied afterwards in numpy. This is
what makes ``EstimatorQNN`` fast: its forward pass is one PUB with a row per sample, and its
parameter-shift backward one PUB with two shifted rows per sample and parameter.

>>> from qiskit.circuit.library import real_amplitudes
>>> from qiskit.quantum_info import SparsePauliOp
>>> qc = real_amplitudes(2, reps=1)
>>> job = Estimator().run([(qc, SparsePauliOp("ZZ"), [[0.0] * qc.num_parameters])])
>>> float(job.result()[0].data.evs[0])
1.0
"""

from __future__ import annotations

import numpy as np
import torch
from qiskit.primitives import BaseEstimatorV2, DataBin, PrimitiveJob, PrimitiveResult, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from qllm.engine import simulate
from qllm.errors import BackendError, SpecError
from qllm.interop.qiskit_circuits import circuit_program

_STRATEGIES = ("auto", "fused", "gates")


def _terms(observables) -> list[dict[str, float]]:
    """Each observable of an ObservablesArray as ``{qllm label: real coeff}``."""
    out = []
    for obs in observables.ravel().tolist():
        terms = {}
        for label, coeff in obs.items():
            if set(label) - set("IXYZ"):
                raise SpecError(f"observable term {label!r}: qllm's estimator takes Pauli terms "
                                "(I, X, Y, Z) only")
            if abs(np.imag(coeff)) > 1e-12:
                raise SpecError(f"observable term {label!r} has complex coefficient {coeff}; "
                                "observables must be Hermitian")
            key = label[::-1]  # Qiskit is little-endian: its last character is qubit 0
            terms[key] = terms.get(key, 0.0) + float(np.real(coeff))
        out.append(terms)
    return out


class Estimator(BaseEstimatorV2):
    """Exact expectation values on qllm's batched engine (complex128), as
    ``qiskit.primitives.StatevectorEstimator`` computes them.

    Args:
        default_precision: with ``precision > 0`` each value gets Gaussian noise of that standard
            deviation (as StatevectorEstimator does); 0 (default) is exact.
        seed: seed of that noise.
        strategy: the engine's strategy, ``"auto"`` (default), ``"fused"`` or ``"gates"``.

    Raises:
        BackendError: negative precision or an unknown strategy.
    """

    def __init__(self, *, default_precision: float = 0.0, seed=None, strategy: str = "auto"):
        if default_precision < 0:
            raise BackendError(f"default_precision must be >= 0, got {default_precision}")
        if strategy not in _STRATEGIES:
            raise BackendError(f"strategy must be one of {', '.join(_STRATEGIES)}, "
                               f"got {strategy!r}")
        self._default_precision = default_precision
        self._seed = seed
        self._strategy = strategy

    @property
    def default_precision(self) -> float:
        return self._default_precision

    def run(self, pubs, *, precision: float | None = None) -> PrimitiveJob:
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        job = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[EstimatorPub]) -> PrimitiveResult:
        # PUBs of one circuit (EstimatorQNN's parameter-shift gradient sends one per shifted
        # parameter set) are stacked into one engine call.
        groups: dict[int, list[int]] = {}
        for i, pub in enumerate(pubs):
            groups.setdefault(id(pub.circuit), []).append(i)
        results: list = [None] * len(pubs)
        for members in groups.values():
            program = circuit_program(pubs[members[0]].circuit)
            parts = [_pub_rows(program, pubs[i]) for i in members]
            words = sorted({w for _, terms in parts for t in terms for w in t if set(w) != {"I"}})
            rows = np.concatenate([flat for flat, _ in parts])
            vals = self._expvals(program, words, rows)
            start = 0
            for i, (flat, terms) in zip(members, parts):
                block = vals[start:start + len(flat)]
                start += len(flat)
                results[i] = self._pub_result(pubs[i], block, words, terms)
        return PrimitiveResult(results, metadata={"version": 2})

    def _expvals(self, program, words: list[str], rows: np.ndarray) -> np.ndarray:
        """``[N, n_words]`` expectation values of Pauli words, one engine call."""
        if not words:
            return np.zeros((len(rows), 0))
        spec = program.spec.with_observables(words)
        with torch.no_grad():
            return simulate(spec, program.inputs(rows), torch.zeros(0, dtype=torch.float64),
                            self._strategy).numpy()

    def _pub_result(self, pub: EstimatorPub, vals: np.ndarray, words: list[str],
                    terms: list[dict[str, float]]) -> PubResult:
        """Combine word values ``[N, n_words]`` into the PUB's broadcast ``evs``."""
        column = {w: j for j, w in enumerate(words)}
        coeffs = np.zeros((len(terms), len(words)))
        offsets = np.zeros(len(terms))
        for i, t in enumerate(terms):
            for label, c in t.items():
                if label in column:
                    coeffs[i, column[label]] += c
                else:
                    offsets[i] += c  # the identity term
        full = vals @ coeffs.T + offsets  # [N, n_observables]
        shape = pub.shape
        p_idx = np.broadcast_to(np.arange(len(vals)).reshape(pub.parameter_values.shape), shape)
        o_idx = np.broadcast_to(np.arange(len(terms)).reshape(pub.observables.shape), shape)
        evs = np.asarray(full[p_idx, o_idx], dtype=np.float64)
        stds = np.zeros_like(evs)
        if pub.precision:  # None or 0: exact
            evs = np.random.default_rng(self._seed).normal(evs, pub.precision)
            stds = np.full_like(evs, pub.precision)
        return PubResult(DataBin(evs=evs, stds=stds, shape=evs.shape),
                         metadata={"target_precision": pub.precision,
                                   "circuit_metadata": pub.circuit.metadata})


def _pub_rows(program, pub: EstimatorPub) -> tuple[np.ndarray, list[dict[str, float]]]:
    """The PUB's parameter sets ``[N, P]`` and its observables' terms."""
    values = pub.parameter_values
    N = int(np.prod(values.shape, dtype=int))
    flat = values.as_array(program.parameters).reshape(N, len(program.parameters))
    return flat.astype(np.float64), _terms(pub.observables)
