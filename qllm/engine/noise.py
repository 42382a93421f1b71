"""Simple noise channels, simulated exactly with a batched density matrix (small n only).

Supported (PennyLane's conventions, so ``default.mixed`` is the reference):
- ``depolarizing`` p: after every gate, on each qubit it touches,
  ``rho -> (1 - p) rho + p/3 (X rho X + Y rho Y + Z rho Z)`` (``qml.DepolarizingChannel(p)``).
- ``amplitude_damping`` gamma: after every gate (after depolarizing), on each qubit it touches,
  Kraus ``[[1, 0], [0, sqrt(1 - gamma)]]`` and ``[[0, sqrt(gamma)], [0, 0]]``
  (``qml.AmplitudeDamping(gamma)``).
- ``readout`` p: each measured bit flips with probability p (symmetric), applied exactly to the
  outcome probabilities (``default.mixed(readout_prob=p)``); needs no density matrix.

Nothing else (no crosstalk, no idle noise, no coherent over-rotation); for device-calibrated noise
use the ``aer:<fake_backend>`` backend. The density matrix costs ``B * 4^n`` complex numbers, so
gate noise is limited to ``MAX_DENSITY_QUBITS`` qubits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from qllm.errors import BackendError
from qllm.gates import complex_dtype, gate
from qllm.spec import CircuitSpec
from qllm.validate import is_int, is_real

MAX_DENSITY_QUBITS = 10
CHANNELS = ("depolarizing", "amplitude_damping", "readout")


@dataclass(frozen=True)
class NoiseSpec:
    """Probabilities of the supported channels (all in [0, 1]; 0 disables a channel)."""

    depolarizing: float = 0.0
    amplitude_damping: float = 0.0
    readout: float = 0.0

    def __post_init__(self):
        for name, p in asdict(self).items():
            if not is_real(p) or not 0.0 <= p <= 1.0:
                raise BackendError(f"noise {name} must be a probability in [0, 1], got {p!r}")

    @property
    def gate_noise(self) -> bool:
        """True when a density matrix is needed (a channel acts between gates)."""
        return self.depolarizing > 0 or self.amplitude_damping > 0

    @classmethod
    def parse(cls, noise) -> NoiseSpec | None:
        """``None``, a NoiseSpec, or a dict such as ``{"depolarizing": 0.01, "readout": 0.02}``."""
        if noise is None or isinstance(noise, NoiseSpec):
            return noise
        if not isinstance(noise, dict):
            raise BackendError(f"noise must be None or a dict with keys {CHANNELS}, got "
                               f"{type(noise).__name__}")
        unknown = sorted(set(noise) - set(CHANNELS))
        if unknown:
            raise BackendError(f"unknown noise channel(s) {unknown}; supported: {CHANNELS}")
        return cls(**{k: float(v) if is_int(v) else v
                      for k, v in noise.items()})


def apply_on_axes(t: torch.Tensor, mat: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Apply ``mat`` (``[d, d]`` or per sample ``[B, d, d]``) to the qubit ``axes`` of
    ``t`` (``[B, 2, 2, ...]``, first listed axis = most significant bit of ``d``)."""
    k = len(axes)
    dst = list(range(t.dim() - k, t.dim()))
    moved = t.movedim(axes, dst)
    shape = moved.shape
    flat = moved.reshape(shape[0], -1, 2**k)  # [B, rest, d]
    flat = flat @ mat.transpose(-1, -2)  # row vectors: v -> mat v
    return flat.reshape(shape).movedim(dst, axes)


def _conjugate(rho: torch.Tensor, mat: torch.Tensor, wires: tuple[int, ...], n: int):
    """``mat rho mat^dagger`` on ``wires`` for ``rho`` shaped ``[B] + [2] * 2n``."""
    rho = apply_on_axes(rho, mat, [1 + q for q in wires])
    return apply_on_axes(rho, mat.conj(), [1 + n + q for q in wires])


def _kraus(noise: NoiseSpec, dtype, device) -> list[list[torch.Tensor]]:
    channels = []
    p = noise.depolarizing
    if p > 0:
        eye = torch.eye(2, dtype=dtype, device=device)
        x = torch.tensor([[0, 1], [1, 0]], dtype=dtype, device=device)
        y = torch.tensor([[0, -1j], [1j, 0]], dtype=dtype, device=device)
        z = torch.tensor([[1, 0], [0, -1]], dtype=dtype, device=device)
        channels.append([(1 - p) ** 0.5 * eye] + [(p / 3) ** 0.5 * m for m in (x, y, z)])
    g = noise.amplitude_damping
    if g > 0:
        k0 = torch.tensor([[1, 0], [0, (1 - g) ** 0.5]], dtype=dtype, device=device)
        k1 = torch.tensor([[0, g**0.5], [0, 0]], dtype=dtype, device=device)
        channels.append([k0, k1])
    return channels


def density_bytes(n_qubits: int, batch: int, dtype=torch.float32) -> int:
    """Rough peak bytes of ``simulate_density`` (a few live copies of the batch of rho)."""
    item = 16 if dtype == torch.float64 else 8
    return 4 * batch * 4**n_qubits * item


def simulate_density(spec: CircuitSpec, inputs: torch.Tensor, weights: torch.Tensor,
                     noise: NoiseSpec) -> torch.Tensor:
    """Noisy density matrices ``[B, 2^n, 2^n]`` (complex) after every gate and gate-noise channel.

    Differentiable by autograd in inputs and weights. Readout noise is not applied here (see
    ``readout_flip``).
    """
    n = spec.n_qubits
    if n > MAX_DENSITY_QUBITS:
        raise BackendError(f"gate noise needs a density matrix; n_qubits={n} exceeds the limit "
                           f"{MAX_DENSITY_QUBITS}. Use noise={{'readout': p}} only, or fewer qubits.")
    B = inputs.shape[0]
    dtype = complex_dtype(inputs.dtype)
    rho = torch.zeros(B, 2**n, 2**n, dtype=dtype, device=inputs.device)
    rho[:, 0, 0] = 1
    rho = rho.reshape([B] + [2] * (2 * n))
    channels = _kraus(noise, dtype, inputs.device)
    for op in spec.ops:
        g = gate(op.gate)
        angles = spec.op_angles(op, inputs, weights) if g.n_params else weights.new_zeros(0)
        rho = _conjugate(rho, g.matrix(angles).to(dtype), op.wires, n)
        for kraus in channels:
            for q in op.wires:
                rho = sum(_conjugate(rho, k, (q,), n) for k in kraus)
    return rho.reshape(B, 2**n, 2**n)


def readout_flip(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Outcome probabilities ``[B, 2^n]`` after each bit flips independently with probability p."""
    if p == 0:
        return probs
    B, D = probs.shape
    n = D.bit_length() - 1
    flip = torch.tensor([[1 - p, p], [p, 1 - p]], dtype=probs.dtype, device=probs.device)
    t = probs.reshape([B] + [2] * n)
    for q in range(n):
        t = apply_on_axes(t, flip, [1 + q])
    return t.reshape(B, D)
