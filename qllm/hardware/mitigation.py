"""Error mitigation for sampled expectation values: readout (tensored confusion matrices
calibrated in the same job) and zero-noise extrapolation (global unitary folding + Richardson).

Why not Mitiq: mitiq 1.1 (the current release) needs numpy ~2.2 and cirq-core; installing it here
downgrades the pinned numpy 2.4 and pulls cirq and pandas into the training environment
(``pip install --dry-run mitiq``). Folding and Richardson are a few lines each, tested below
against the analytic values they must reproduce.

- readout: two calibration circuits per job (all qubits in |0>, all in |1>), measured with the
  job's shots, give each measured qubit's confusion matrix ``M[read, prepared]``; a Z-parity's
  estimate replaces each bit's sign (+1, -1) with ``inv(M).T @ (+1, -1)``, which is exactly the
  parity of the inverse-confusion-corrected distribution (tensored model).
- zne: each circuit runs at noise scales ``zne_scales`` (odd: U (U^dag U)^k), and the values are
  extrapolated to scale 0 with the Richardson (Lagrange) polynomial through all of them.

Cost: readout adds 2 circuits per job and setting; zne multiplies circuits and shots by
``len(zne_scales)`` (``mitigation_factor``).

>>> richardson_coefficients((1, 3, 5))
(1.875, -1.25, 0.375)
"""

from __future__ import annotations

import numpy as np

from qllm.errors import BackendError
from qllm.validate import is_int

MITIGATIONS = ("none", "readout", "zne", "readout+zne")
DEFAULT_SCALES = (1, 3, 5)


def check_mitigation(mitigation: str | None, scales=DEFAULT_SCALES) -> tuple[str, tuple[int, ...]]:
    """``(mitigation, scales)`` validated; None means "none"."""
    mitigation = mitigation or "none"
    if mitigation not in MITIGATIONS:
        raise BackendError(f"mitigation {mitigation!r} is not one of {MITIGATIONS}")
    scales = tuple(scales)
    if (not scales or any(not is_int(s) or s < 1 or s % 2 == 0
                          for s in scales) or len(set(scales)) != len(scales)):
        raise BackendError(f"zne_scales must be distinct odd ints >= 1, got {scales!r}")
    return mitigation, scales if "zne" in mitigation else (1,)


def richardson_coefficients(scales) -> tuple[float, ...]:
    """Weights ``c_i`` with ``sum c_i f(s_i) = p(0)`` for the polynomial p through all points."""
    s = [float(v) for v in scales]
    return tuple(float(np.prod([sj / (sj - si) for j, sj in enumerate(s) if j != i]))
                 for i, si in enumerate(s))


def extrapolate(values: np.ndarray, scales) -> np.ndarray:
    """Zero-noise value from ``values [len(scales), ...]``."""
    c = np.asarray(richardson_coefficients(scales))
    return np.tensordot(c, values, axes=1)


def mitigation_factor(mitigation: str, scales=DEFAULT_SCALES) -> int:
    """How many times the circuits (and their shots) of one job mitigation runs."""
    mitigation, scales = check_mitigation(mitigation, scales)
    return len(scales)


def fold(circuit, scale: int):
    """Global unitary folding of a measurement-free circuit: ``U (U^dag U)^((scale-1)/2)``,
    barriers between the parts so no transpiler pass cancels them."""
    out = circuit.copy()
    inverse = circuit.inverse()
    for _ in range((scale - 1) // 2):
        out.barrier()
        out.compose(inverse, inplace=True)
        out.barrier()
        out.compose(circuit, inplace=True)
    return out


def confusion_from_bits(zeros: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """Per-qubit ``M [n, 2, 2]`` (``M[q, read, prepared]``) from calibration bits
    ``[shots, n]`` of all-|0> and all-|1> preparations."""
    p1_given0 = zeros.mean(0)
    p0_given1 = 1.0 - ones.mean(0)
    M = np.empty((zeros.shape[1], 2, 2))
    M[:, 0, 0], M[:, 1, 0] = 1 - p1_given0, p1_given0
    M[:, 0, 1], M[:, 1, 1] = p0_given1, 1 - p0_given1
    return M


def sign_vectors(confusion: np.ndarray | None, n: int) -> np.ndarray:
    """``[n, 2]``: the value each outcome bit contributes to a Z-parity: (+1, -1), or its
    readout-corrected ``inv(M).T @ (+1, -1)``."""
    if confusion is None:
        return np.tile(np.array([1.0, -1.0]), (n, 1))
    det = confusion[:, 0, 0] * confusion[:, 1, 1] - confusion[:, 0, 1] * confusion[:, 1, 0]
    if np.any(det < 0.1):
        raise BackendError(f"readout calibration is nearly singular (determinants {det.round(3)}"
                           "): too few shots, or a broken qubit")
    return np.stack([np.linalg.solve(m.T, np.array([1.0, -1.0])) for m in confusion])


def parity_means(bits: np.ndarray, support: list[int], signs: np.ndarray) -> np.ndarray:
    """Mean over shots of the product of ``signs[q, bit_q]`` over ``support``:
    ``bits [B, shots, n]`` -> ``[B]``."""
    value = np.ones(bits.shape[:2])
    for q in support:
        value = value * signs[q][bits[..., q].astype(np.int64)]
    return value.mean(-1)
