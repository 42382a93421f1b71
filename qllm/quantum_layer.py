"""QuantumLayer: a CircuitSpec, a backend, and the circuit's trainable weights as an nn.Module."""

from __future__ import annotations

import math

import torch
from torch import nn

from qllm.backends import Backend, get_backend
from qllm.errors import ConfigError
from qllm.spec import CircuitSpec
from qllm.validate import check_angles

INITS = ("uniform", "normal", "zeros")


class QuantumLayer(nn.Module):
    """A variational circuit as a layer: ``[..., n_inputs] -> [..., n_observables]`` in [-1, 1].

    Args:
        spec: the circuit.
        backend: a backend name (``"torch"``, ``"pennylane:default.qubit"``, ``"aer:fake_manila"``,
            ...) or a Backend instance.
        init: weight initialisation: ``"uniform"`` draws from [0, 2π) (PennyLane's TorchLayer
            default), ``"normal"`` from N(0, init_scale²) (small angles start near the identity,
            which avoids barren plateaus in deep circuits), ``"zeros"``.
        init_scale: standard deviation for ``"normal"``.
        gradient: "backprop" (default: autograd through the backend; a BackendError if the
            backend cannot, e.g. with shots), "parameter-shift" or "spsa" (``qllm.gradients``:
            hardware-style gradients for inputs and weights, all shifted circuits in one job).
        spsa_samples / spsa_epsilon / spsa_seed: SPSA directions per sample, perturbation size,
            and the seed of its direction generator.
        backend_options: a dict passed to the backend factory when ``backend`` is a name
            (e.g. ``{"backend": "fake_manila"}`` for ``pennylane:qiskit.remote``); further
            keyword arguments are merged into it.

    Any leading batch shape is accepted; the output follows the input's device and float dtype
    (float32 runs complex64, float64 runs complex128).

    Randomness: the initial weights are drawn from torch's global RNG, as ``nn.Linear``'s are, so
    ``torch.manual_seed`` fixes them (``qllm.train.train`` seeds it from ``TrainConfig.seed`` and
    restores the caller's RNG state afterwards). Forward calls on the native and Aer backends
    draw only from private generators (shot sampler, SPSA, Aer job seeds); PennyLane devices with
    shots seed themselves from NumPy's global RNG unless given a ``seed`` device option.

    >>> from qllm.circuits import build_circuit
    >>> layer = QuantumLayer(build_circuit(n_qubits=4, n_layers=2))
    >>> layer(torch.rand(8, 16, 4)).shape
    torch.Size([8, 16, 4])
    """

    def __init__(self, spec: CircuitSpec, backend: str | Backend = "torch", init: str = "uniform",
                 init_scale: float = 0.1, gradient: str = "backprop", spsa_samples: int = 1,
                 spsa_epsilon: float = 0.01, spsa_seed: int | None = None,
                 backend_options: dict | None = None, **options):
        super().__init__()
        if not isinstance(spec, CircuitSpec):
            raise ConfigError(f"spec must be a CircuitSpec, got {type(spec).__name__}")
        if init not in INITS:
            raise ConfigError(f"init {init!r} is not one of {INITS}")
        self.spec = spec
        # A dict as well as keywords: PennyLane's qiskit.remote takes a device option named
        # "backend", which a keyword could not carry past this method's own `backend`.
        self.backend = get_backend(backend, **{**(backend_options or {}), **options})
        from qllm.gradients import check_backprop, make_gradient

        self.gradient = gradient
        self.gradient_fn = make_gradient(gradient, spsa_samples=spsa_samples,
                                         spsa_epsilon=spsa_epsilon, seed=spsa_seed)
        if self.gradient_fn is None:
            check_backprop(self.backend, gradient)
        w = torch.empty(spec.n_weights)
        if init == "uniform":
            nn.init.uniform_(w, 0.0, 2 * math.pi)
        elif init == "normal":
            nn.init.normal_(w, 0.0, init_scale)
        else:
            nn.init.zeros_(w)
        self.weights = nn.Parameter(w)

    @property
    def n_inputs(self) -> int:
        return self.spec.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.spec.n_observables

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_angles(x, "x", self.spec.n_inputs)
        lead = x.shape[:-1]
        flat = x.reshape(math.prod(lead), self.spec.n_inputs)  # (B*T, n_inputs)
        weights = self.weights.to(flat.device, flat.dtype)
        if self.gradient_fn is not None:
            out = self.gradient_fn(self.spec, self.backend, flat, weights)
        else:
            if torch.is_grad_enabled() and (flat.requires_grad or weights.requires_grad):
                from qllm.gradients import check_backprop

                check_backprop(self.backend, self.gradient)  # e.g. a backend swapped in later
            out = self.backend.expval(self.spec, flat, weights)
        return out.reshape(*lead, self.spec.n_observables)  # (..., n_observables)

    def extra_repr(self) -> str:
        return (f"n_qubits={self.spec.n_qubits}, n_weights={self.spec.n_weights}, "
                f"backend={self.backend.name!r}, gradient={self.gradient!r}")


def use_backend(module: torch.nn.Module, backend, gradient: str | None = None,
                backend_options: dict | None = None, **options) -> int:
    """Swap the backend of every ``QuantumLayer`` inside ``module`` (e.g. for
    ``qllm eval --backend aer:fake_manila --shots 4096``).

    Args:
        module: a model (or a single QuantumLayer).
        backend: a name for ``qllm.backends.get_backend`` or a Backend instance (then shared).
        gradient: also switch each layer's gradient method ("backprop", "parameter-shift",
            "spsa"); None keeps it. Evaluate under ``torch.no_grad()`` when the new backend
            cannot backprop and the gradient stays "backprop".
        backend_options / **options: backend options (``shots``, ``seed``, ...; the dict can
            hold a device option named ``backend``); each layer gets its own backend built from
            the name, so stats stay per layer.

    Returns:
        The number of layers changed.
    """
    from qllm.gradients import make_gradient

    n = 0
    for layer in module.modules():
        if isinstance(layer, QuantumLayer):
            layer.backend = get_backend(backend, **{**(backend_options or {}), **options})
            if gradient is not None:
                layer.gradient, layer.gradient_fn = gradient, make_gradient(gradient)
            n += 1
    return n
