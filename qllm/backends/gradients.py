"""Hardware-style gradients: parameter-shift and SPSA behind a ``torch.autograd.Function``, for
trainable weights AND data inputs, with any backend (shot-based, noisy, remote).

How the circuits are built: every non-constant gate angle of the spec (an "occurrence": one
parameter slot of one op that reads an input or a weight) becomes its own circuit input
(``angle_spec``), so the angle values ``A [B, K]`` are computed in torch and shifted one
occurrence at a time. The chain rule through the angle (``angle = scale * source``, a product
of features for IQP-style inputs) is applied in torch afterwards. The forward pass runs this same
angle circuit, so forward and shifted circuits are transpiled and executed identically.

Parameter-shift: each occurrence k uses the general shift rule of its gate's ``frequencies``
(``qml.gradients.generate_shift_rule``): R_k = 2 * len(frequencies) terms, i.e. 2 for RX/RY/RZ/
PhaseShift/Rot/U3/RXX/RYY/RZZ (frequencies {1}), 4 for CRX/CRY/CRZ ({0.5, 1}) and RBS ({1, 2}).
All shifted circuits of a backward pass go to the backend in ONE call (one job).
SPSA: ``spsa_samples`` Rademacher directions per sample over (inputs, weights) jointly,
``g ~ (f(v + eps D) - f(v - eps D)) / (2 eps) * D``, averaged over the draws; all 2 x draws
circuits per sample in ONE call. Unbiased up to O(eps^2) (third derivatives). With shots, the
estimate's variance grows like 1/eps^2: raise ``spsa_epsilon`` (e.g. 0.1-0.2).

Counting formula (what ``backend.stats.circuits`` records; ``gradient_circuits`` computes it).
For a batch of B samples, with S = measurement settings per circuit (1 for exact expectation
values; with shots, the number of qubit-wise commuting observable groups, 1 for Z observables):
    forward                = B * S
    parameter-shift        = B * S * sum_{k shifted} R_k
    SPSA                   = B * S * 2 * spsa_samples
where "shifted" occurrences are those reading a weight (if the weights need a gradient) or an
input (if the inputs need a gradient). A weight used by 3 gates is 3 occurrences. Shots add
``circuits * shots``; jobs add 1 for the forward and 1 for the backward.

>>> import torch
>>> from qllm.backends import get_backend
>>> from qllm.circuits import build_circuit
>>> spec = build_circuit(n_qubits=2, n_layers=1)
>>> f = CircuitGradient("parameter-shift")
>>> x = torch.rand(3, spec.n_inputs, requires_grad=True)
>>> f(spec, get_backend("torch"), x, torch.rand(spec.n_weights)).sum().backward()
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.autograd.function import once_differentiable

from qllm.errors import BackendError, ConfigError
from qllm.gates import gate
from qllm.spec import CircuitSpec, Op, Param, inp
from qllm.validate import is_int

# The gradient vocabulary, in one place: qllm's hardware-style methods run shifted circuits (all
# of a step's in one job); the simulated ones exist only in simulation and run no circuits of
# their own; a QuantumLayer takes backprop or a shift method; cost projections know all four.
SHIFT_METHODS = ("parameter-shift", "spsa")
SIMULATED_METHODS = ("backprop", "adjoint")
GRADIENTS = SIMULATED_METHODS + SHIFT_METHODS
LAYER_GRADIENTS = ("backprop", *SHIFT_METHODS)


@dataclass(frozen=True)
class Occurrence:
    """One non-constant gate angle: op ``op``'s parameter ``slot`` reads ``param``."""

    op: int
    slot: int
    param: Param
    gate: str

    @property
    def frequencies(self) -> tuple[float, ...]:
        return tuple(gate(self.gate).frequencies)

    @property
    def n_terms(self) -> int:
        return 2 * len(self.frequencies)


@lru_cache(maxsize=256)
def angle_spec(spec: CircuitSpec) -> tuple[CircuitSpec, tuple[Occurrence, ...]]:
    """``spec`` with every non-constant angle replaced by its own input ``inp(k)`` (scale 1),
    and the occurrences in input order."""
    occs: list[Occurrence] = []
    ops = []
    for i, op in enumerate(spec.ops):
        params = []
        for j, p in enumerate(op.params):
            if p.kind == "const":
                params.append(p)
                continue
            params.append(inp(len(occs)))
            occs.append(Occurrence(i, j, p, op.gate))
        ops.append(Op(op.gate, op.wires, tuple(params)))
    aspec = CircuitSpec(spec.n_qubits, tuple(ops), spec.observables, len(occs), 0,
                        name=spec.name)
    return aspec, tuple(occs)


def angle_matrix(occs: tuple[Occurrence, ...], inputs: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
    """Angles ``[N, K]`` from inputs ``[N, n_inputs]`` and weights ``[n_weights]`` or ``[N, n_weights]``."""
    N = inputs.shape[0]
    cols = []
    for occ in occs:
        p = occ.param
        if p.kind == "input":
            a = inputs[:, p.indices[0]]
            for i in p.indices[1:]:
                a = a * inputs[:, i]
        else:
            a = weights[..., p.indices[0]].expand(N)
        cols.append(a * p.scale)
    if not cols:
        return inputs.new_zeros(N, 0)
    return torch.stack(cols, -1)


@lru_cache(maxsize=16)
def shift_rule(frequencies: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """``((coefficient, shift), ...)`` of the first-derivative shift rule for ``frequencies``."""
    import pennylane as qml

    rule = qml.gradients.generate_shift_rule(frequencies)
    return tuple((float(c), float(s)) for c, s in rule)


def _shifted(occs, need_x: bool, need_w: bool) -> list[int]:
    return [k for k, o in enumerate(occs)
            if (o.param.kind == "input" and need_x) or (o.param.kind == "weight" and need_w)]


def gradient_circuits(spec: CircuitSpec, method: str, batch: int, inputs_grad: bool = True,
                      weights_grad: bool = True, spsa_samples: int = 1, settings: int = 1) -> int:
    """Circuits one backward pass executes (the forward's ``batch * settings`` not included)."""
    if method == "spsa":
        return batch * settings * 2 * spsa_samples if (inputs_grad or weights_grad) else 0
    if method != "parameter-shift":
        raise ConfigError(f"method {method!r} is not one of {SHIFT_METHODS}")
    _, occs = angle_spec(spec)
    return batch * settings * sum(occs[k].n_terms for k in _shifted(occs, inputs_grad,
                                                                        weights_grad))


def _chain(occs, shifted, dl_da, inputs, weights, need_x, need_w):
    """Chain rule from ``dl_da [B, len(shifted)]`` (loss w.r.t. each shifted angle) to
    inputs ``[B, n_inputs]`` and weights ``[n_weights]``."""
    gx = torch.zeros_like(inputs) if need_x else None
    gw = torch.zeros_like(weights) if need_w else None
    for col, k in enumerate(shifted):
        p = occs[k].param
        d = dl_da[:, col] * p.scale
        if p.kind == "weight":
            gw[p.indices[0]] += d.sum()
            continue
        idx = p.indices
        for pos, i in enumerate(idx):  # d(x_i1 * x_i2 ...)/dx_i: product of the others
            term = d
            for other, j in enumerate(idx):
                if other != pos:
                    term = term * inputs[:, j]
            gx[:, i] += term
    return gx, gw


class CircuitGradient:
    """Expectation values whose gradient is computed by parameter-shift or SPSA.

    Args:
        method: "parameter-shift" or "spsa".
        spsa_samples: SPSA directions per sample (>= 1).
        spsa_epsilon: SPSA perturbation size (> 0).
        seed: seeds the SPSA directions' ``torch.Generator`` (None: random).

    Call: ``grad(spec, backend, inputs [B, n_inputs], weights [n_weights]) -> [B, n_obs]``.
    """

    def __init__(self, method: str = "parameter-shift", spsa_samples: int = 1,
                 spsa_epsilon: float = 0.01, seed: int | None = None):
        if method not in SHIFT_METHODS:
            raise ConfigError(f"gradient method {method!r} is not one of {SHIFT_METHODS}")
        if not is_int(spsa_samples) or spsa_samples < 1:
            raise ConfigError(f"spsa_samples must be an int >= 1, got {spsa_samples!r}")
        if not isinstance(spsa_epsilon, (int, float)) or not spsa_epsilon > 0:
            raise ConfigError(f"spsa_epsilon must be a number > 0, got {spsa_epsilon!r}")
        self.method = method
        self.spsa_samples = spsa_samples
        self.spsa_epsilon = float(spsa_epsilon)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def __call__(self, spec: CircuitSpec, backend, inputs: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
        return _ShiftFunction.apply(inputs, weights, self, spec, backend)

    def rng_state(self) -> dict:
        """The SPSA direction generator's state (a tensor: checkpoints load with
        ``weights_only=True``)."""
        return {"directions": self.generator.get_state()}

    def set_rng_state(self, state: dict) -> None:
        if "directions" in state:
            self.generator.set_state(state["directions"].cpu())

    def seed_rng(self, seed: int, path: str) -> None:
        """Reseed the directions from ``seed`` and ``path``, the gradient's place in the model."""
        from qllm.rng import derived_seed

        self.generator.manual_seed(derived_seed(seed, path))

    def _evaluate(self, spec, backend, angles: torch.Tensor) -> torch.Tensor:
        aspec, _ = angle_spec(spec)
        return backend.expval(aspec, angles, angles.new_zeros(0))

    def backward(self, spec, backend, grad_out, inputs, weights, need_x, need_w):
        if self.method == "spsa":
            return self._spsa(spec, backend, grad_out, inputs, weights, need_x, need_w)
        _, occs = angle_spec(spec)
        shifted = _shifted(occs, need_x, need_w)
        if not shifted:
            return (torch.zeros_like(inputs) if need_x else None,
                    torch.zeros_like(weights) if need_w else None)
        A = angle_matrix(occs, inputs, weights)  # [B, K]
        rows, coeffs = [], []
        for k in shifted:
            for c, s in shift_rule(occs[k].frequencies):
                shifted_a = A.clone()
                shifted_a[:, k] += s
                rows.append(shifted_a)
                coeffs.append(c)
        vals = self._evaluate(spec, backend, torch.cat(rows))  # one call: [M * B, n_obs]
        vals = vals.reshape(len(rows), A.shape[0], -1)  # [M, B, n_obs]
        dl = (vals * grad_out).sum(-1)  # [M, B]
        dl_da = torch.zeros(A.shape[0], len(shifted), dtype=A.dtype, device=A.device)
        m = 0
        for col, k in enumerate(shifted):
            for c, _ in shift_rule(occs[k].frequencies):
                dl_da[:, col] += c * dl[m]
                m += 1
        return _chain(occs, shifted, dl_da, inputs, weights, need_x, need_w)

    def _spsa(self, spec, backend, grad_out, inputs, weights, need_x, need_w):
        _, occs = angle_spec(spec)
        B, S, eps = inputs.shape[0], self.spsa_samples, self.spsa_epsilon

        def directions(width: int, need: bool) -> torch.Tensor:
            d = torch.randint(0, 2, (S, B, width), generator=self.generator).to(inputs.dtype)
            d = (2 * d - 1).to(inputs.device)
            return d if need else torch.zeros_like(d)

        dx, dw = directions(inputs.shape[1], need_x), directions(weights.shape[0], need_w)
        x = inputs.expand(S, B, -1)
        w = weights.expand(S, B, -1)
        plus = angle_matrix(occs, (x + eps * dx).reshape(S * B, -1), (w + eps * dw).reshape(S * B, -1))
        minus = angle_matrix(occs, (x - eps * dx).reshape(S * B, -1), (w - eps * dw).reshape(S * B, -1))
        vals = self._evaluate(spec, backend, torch.cat([plus, minus]))  # one call: [2 S B, n_obs]
        vals = vals.reshape(2, S, B, -1)
        dl = ((vals[0] - vals[1]) / (2 * eps) * grad_out).sum(-1)  # [S, B]
        gx = (dl[..., None] * dx).mean(0) if need_x else None
        gw = (dl[..., None] * dw).mean(0).sum(0) if need_w else None
        return gx, gw


class _ShiftFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, weights, grad: CircuitGradient, spec: CircuitSpec, backend):
        _, occs = angle_spec(spec)
        out = grad._evaluate(spec, backend, angle_matrix(occs, inputs, weights))
        ctx.save_for_backward(inputs, weights)
        ctx.grad, ctx.spec, ctx.backend = grad, spec, backend
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        inputs, weights = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_w):
            return None, None, None, None, None
        gx, gw = ctx.grad.backward(ctx.spec, ctx.backend, grad_out.to(inputs.dtype), inputs,
                                   weights, need_x, need_w)
        return gx, gw, None, None, None


def make_gradient(method: str, **options) -> CircuitGradient | None:
    """``None`` for "backprop", else a ``CircuitGradient``; unknown methods fail listing the
    allowed ones."""
    if method == "backprop":
        return None
    if method not in SHIFT_METHODS:
        raise ConfigError(f"gradient {method!r} is not one of {LAYER_GRADIENTS}")
    return CircuitGradient(method, **options)


def check_backprop(backend, gradient: str = "backprop") -> None:
    """Raise when ``backend`` cannot give autograd gradients."""
    if not getattr(backend, "supports_backprop", True):
        raise BackendError(
            f"gradient={gradient!r} needs a backend that supports backprop, but {backend.name!r} "
            f"does not (shots={getattr(backend, 'shots', None)!r}); use "
            "gradient='parameter-shift' or gradient='spsa'")


__all__ = [
    "CircuitGradient",
    "angle_matrix",
    "angle_spec",
    "check_backprop",
    "gradient_circuits",
    "make_gradient",
    "shift_rule",
]
