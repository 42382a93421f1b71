"""QuantumLayer: a CircuitSpec, a backend, and the circuit's trainable weights as an nn.Module."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules import module

from qllm.backends import Backend, get_backend
from qllm.backends.torch_backend import TorchBackend
from qllm.checkpoint import stack_on_load
from qllm.errors import CheckpointError, ConfigError
from qllm.seeds import check_seed
from qllm.spec import CircuitSpec
from qllm.validate import check_angles, is_real

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
        gradient: "backprop" (default: autograd through the backend; a BackendError at the
            first forward that needs a gradient if the backend cannot, e.g. aer or shots), "parameter-shift" or "spsa" (``qllm.backends.gradients``:
            hardware-style gradients for inputs and weights, all shifted circuits in one job).
        spsa_samples / spsa_epsilon / spsa_seed: SPSA directions per sample, perturbation size,
            and the seed of its direction generator.
        backend_options: a dict passed to the backend factory when ``backend`` is a name
            (e.g. ``{"backend": "fake_manila"}`` for ``pennylane:qiskit.remote``); further
            keyword arguments are merged into it.

    Any leading batch shape is accepted; the output follows the input's device and float dtype
    (float32 runs complex64, float64 runs complex128).

    Private generators (shot sampler, Aer job seeds, SPSA directions) travel in
    ``state_dict()`` under ``_extra_state`` (``get_extra_state``), so a checkpoint resumes them
    exactly; a layer without any adds no key, and a state dict without the key (older
    checkpoints, weights built by hand) loads the weights and leaves the generators alone.

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
        if not is_real(init_scale) \
                or not 0 <= init_scale < math.inf:
            raise ConfigError(f"init_scale must be a finite number >= 0, got {init_scale!r}")
        check_seed(spsa_seed, "spsa_seed", ConfigError, allow_none=True)
        if backend_options is not None and not isinstance(backend_options, dict):
            raise ConfigError(f"backend_options must be a dict or None, got {backend_options!r}")
        self.spec = spec
        # A dict as well as keywords: PennyLane's qiskit.remote takes a device option named
        # "backend", which a keyword could not carry past this method's own `backend`.
        self.backend = get_backend(backend, **{**(backend_options or {}), **options})
        from qllm.backends.gradients import make_gradient

        self.gradient = gradient
        # A backend without autograd (aer, ibm) is refused at the first forward that needs a
        # gradient, not here: inference under torch.no_grad() needs none.
        self.gradient_fn = make_gradient(gradient, spsa_samples=spsa_samples,
                                         spsa_epsilon=spsa_epsilon, seed=spsa_seed)
        w = torch.empty(spec.n_weights)
        if init == "uniform":
            nn.init.uniform_(w, 0.0, 2 * math.pi)
        elif init == "normal":
            nn.init.normal_(w, 0.0, init_scale)
        else:
            nn.init.zeros_(w)
        self.weights = nn.Parameter(w)
        self.register_state_dict_post_hook(_drop_empty_rng_state)
        self.register_load_state_dict_pre_hook(_allow_missing_rng_state)

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
                from qllm.backends.gradients import check_backprop

                check_backprop(self.backend, self.gradient)  # e.g. a backend swapped in later
            out = self.backend.expval(self.spec, flat, weights)
        return out.reshape(*lead, self.spec.n_observables)  # (..., n_observables)

    # -- weights held by an enclosing module: its circuits train as one tensor ---------------
    def share_weights(self, stacked: nn.Parameter, row: int) -> None:
        """Read ``weights`` from ``stacked[row]``, a parameter the enclosing module owns
        (``share_weights`` below). ``layer.weights`` is then a view, whose gradient lands in
        ``stacked.grad`` (``weights_grad`` reads this layer's row); assigning a Parameter to
        ``layer.weights`` (compression does) gives the layer its own weights again."""
        del self._parameters["weights"]
        self.__dict__["_shared"] = (stacked, row)

    @property
    def shared_weights(self) -> tuple | None:
        """(the shared parameter, this layer's row), or None when the layer owns its weights."""
        return self.__dict__.get("_shared")

    @property
    def weights_grad(self) -> torch.Tensor | None:
        """dL/dweights after a backward, owned or shared."""
        shared = self.shared_weights
        if shared is None:
            return self.weights.grad
        grad = shared[0].grad
        return None if grad is None else grad[shared[1]]

    def __getattr__(self, name: str):
        shared = self.__dict__.get("_shared")
        if name == "weights" and shared is not None:
            return shared[0][shared[1]]
        return super().__getattr__(name)

    def __setattr__(self, name: str, value) -> None:
        if name == "weights":
            self.__dict__.pop("_shared", None)
        super().__setattr__(name, value)

    # -- private generators: carried in state_dict(), asked of the objects that own them ------
    def get_extra_state(self) -> dict:
        """``{"backend": backend.rng_state(), "gradient": gradient_fn.rng_state()}``: tensors
        and plain values, so checkpoints load with ``weights_only=True``."""
        return {"backend": self.backend.rng_state(),
                "gradient": self.gradient_fn.rng_state() if self.gradient_fn is not None else {}}

    def set_extra_state(self, state: dict) -> None:
        """Restore ``get_extra_state``'s states; those of generators this layer's backend or
        gradient does not have are skipped (weights may move from shots to exact, SPSA to
        backprop)."""
        if not (isinstance(state, dict) and set(state) <= {"backend", "gradient"}
                and all(isinstance(v, dict) for v in state.values())):
            raise CheckpointError(f"a QuantumLayer's _extra_state must be a dict with 'backend' "
                                  f"and 'gradient' dicts, got {_describe(state)}")
        self.backend.set_rng_state(state.get("backend", {}))
        if self.gradient_fn is not None:
            self.gradient_fn.set_rng_state(state.get("gradient", {}))

    def seed_rng(self, seed: int, path: str = "<root>", seen: set | None = None) -> None:
        """Reseed the backend's and the gradient's private generators from ``seed`` and
        ``path`` (the layer's name in its model: every layer its own streams).

        Args:
            seed: the run's seed.
            path: the layer's name in the model (``qllm.layer_rng.seed_layers`` passes it).
            seen: ids of backends / gradients already seeded, each once (layers may share one).
        """
        seen = set() if seen is None else seen
        # "gradient_fn": the part name seeds were always derived from (same seed, same numbers)
        for part, owner in (("backend", self.backend), ("gradient_fn", self.gradient_fn)):
            if owner is not None and id(owner) not in seen:
                seen.add(id(owner))
                owner.seed_rng(seed, f"{path}.{part}")

    def extra_repr(self) -> str:
        return (f"n_qubits={self.spec.n_qubits}, n_weights={self.spec.n_weights}, "
                f"backend={self.backend.name!r}, gradient={self.gradient!r}")


def _describe(value) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"a {type(value).__name__}"


def _drop_empty_rng_state(module, state_dict, prefix, local_metadata) -> None:
    """No ``_extra_state`` key for a layer without private generators (exact backprop): its
    state dict stays all tensors, as it was before layers carried generator states."""
    key = prefix + "_extra_state"
    if key in state_dict and not any(state_dict[key].values()):
        del state_dict[key]


def _allow_missing_rng_state(module, state_dict, prefix, *args) -> None:
    """A state dict without the key (no generators then, or written before) loads the weights."""
    state_dict.setdefault(prefix + "_extra_state", {})


def stacked_forward(layers, x: torch.Tensor) -> torch.Tensor:
    """``layers[h](x[..., h, :])`` for every h, stacked: ``[..., H, n_outputs]``.

    Why: attention runs a few VQCs per head on the same tokens, and at small n each call costs
    its fixed overhead. Layers of one spec on the native backend (exact, backprop, no chunking
    or CUDA graphs) run as one engine call (``qllm.engine.simulate_stacked``); any others run
    one by one, with the same values and gradients either way. So do layers with forward hooks
    (the cost report counts calls with them): a stacked call would skip their hooks.
    """
    first = layers[0]
    if not all(_stacks_with(layer, first) for layer in layers):
        return torch.stack([layer(x[..., h, :]) for h, layer in enumerate(layers)], -2)
    check_angles(x, "x", first.spec.n_inputs)
    H, lead = len(layers), x.shape[:-2]
    flat = x.movedim(-2, 0).reshape(H, -1, first.spec.n_inputs)  # (H, tokens, n_inputs)
    out = stacked_call(layers, flat, [flat.shape[1]] * H)
    # one copy into token-major order: attention's q, k, v then read like a classical qkv split
    return out.movedim(0, -2).reshape(*lead, H, out.shape[-1])


def stacked_call(layers, x: torch.Tensor, circuits: list[int]) -> torch.Tensor:
    """One ``simulate_stacked`` call for layers that stack (``_stacks_with``), with the checks
    and bookkeeping a layer's own call has: ``x [H, B, n_inputs]`` (already checked) ->
    ``[H, B, n_observables]``; layer h's stats count ``circuits[h]`` circuits (the MoE's
    padding rows are not counted) in one job, none when it ran none."""
    from qllm.engine import simulate_stacked

    spec, backend = layers[0].spec, layers[0].backend
    weights = stacked_weights(layers).to(x.device, x.dtype)
    check_angles(weights, "weights", spec.n_weights)
    backend.check_memory(spec, x.reshape(-1, spec.n_inputs))
    out = simulate_stacked(spec, x, weights, backend.strategy)
    backend.check_output(out, x, weights)
    for layer, n in zip(layers, circuits):
        layer.backend.stats.add(n, jobs=1 if n else 0)
    return out


def stacked_weights(layers) -> torch.Tensor:
    """The layers' weights ``[H, n_weights]``: rows of the parameter they share, in order, as
    a slice (no copy), else stacked."""
    shared = layers[0].shared_weights
    if shared is not None:
        stacked, first = shared
        if all(layer.shared_weights is not None and layer.shared_weights[0] is stacked
               and layer.shared_weights[1] == first + h for h, layer in enumerate(layers)):
            return stacked[first:first + len(layers)]
    return torch.stack([layer.weights for layer in layers])


def share_weights(owner: nn.Module, name: str, layers) -> None:
    """Move ``layers``' weights (QuantumLayers of one spec inside ``owner``) into one parameter
    ``owner.<name>`` ``[H, n_weights]``, row h holding layer h's values.

    Why: attention's 3 x heads circuits then train as one tensor, which ``stacked_forward``
    hands the engine as is: one gradient to accumulate and one tensor for the optimizer to
    update a step, not H (at 4 qubits that was a tenth of a training step). State dicts written
    before, with each layer's ``<layer>.weights``, load through a pre-hook that stacks them.
    """
    stacked = nn.Parameter(torch.stack([layer.weights.detach() for layer in layers]))
    owner.register_parameter(name, stacked)
    owner._shared_weight_names = (*getattr(owner, "_shared_weight_names", ()), name)
    for h, layer in enumerate(layers):
        layer.share_weights(stacked, h)
    where = {id(m): n for n, m in owner.named_modules()}
    stack_on_load(owner, name, [f"{where[id(layer)]}.weights" for layer in layers])


def circuit_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters that hold ``module``'s circuit weights, each once: the QuantumLayers'
    own and the ones they share."""
    found = {}
    for m in module.modules():
        if isinstance(m, QuantumLayer):
            for p in (m.shared_weights[:1] if m.shared_weights else m.parameters()):
                found[id(p)] = p
    return list(found.values())


def release_unshared(model: nn.Module) -> None:
    """Drop shared weight parameters no layer reads any more (compression gives each layer
    its own weights)."""
    read = {id(m.shared_weights[0]) for m in model.modules()
            if isinstance(m, QuantumLayer) and m.shared_weights is not None}
    for m in model.modules():
        for name in getattr(m, "_shared_weight_names", ()):
            if name in m._parameters and id(m._parameters[name]) not in read:
                del m._parameters[name]


def _stacks_with(layer: QuantumLayer, first: QuantumLayer) -> bool:
    hooked = (layer._forward_pre_hooks or layer._forward_hooks
              or module._global_forward_pre_hooks or module._global_forward_hooks)
    b, f = layer.backend, first.backend
    return (not hooked and type(b) is TorchBackend
            and (layer.spec is first.spec or layer.spec == first.spec)
            and layer.gradient_fn is None
            and b.measurement is None and b.graphs is None and b.chunk_size is None
            and b.strategy == f.strategy and b.budget == f.budget)


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
    from qllm.backends.gradients import make_gradient

    n = 0
    for layer in module.modules():
        if isinstance(layer, QuantumLayer):
            layer.backend = get_backend(backend, **{**(backend_options or {}), **options})
            if gradient is not None:
                layer.gradient, layer.gradient_fn = gradient, make_gradient(gradient)
            n += 1
    return n
