"""Seeded random CircuitSpecs for parity tests: every gate in the table, parameters from inputs
(including products of features), weights and constants, with scales, and random Pauli observables.

>>> from tests.random_specs import random_spec
>>> spec = random_spec(seed=3, n_qubits=4)
>>> spec.n_qubits
4
"""

from __future__ import annotations

import random

from qllm.gates import GATES
from qllm.spec import CircuitSpec, Op, Param, const, inp, w


def _param(rng: random.Random, n_inputs: int, n_weights: int) -> Param:
    scale = rng.choice([1.0, 1.0, 0.5, -1.3, 2.0])
    r = rng.random()
    if r < 0.4:
        if rng.random() < 0.2 and n_inputs > 1:  # a product of features, as IQP encodings use
            i, j = rng.sample(range(n_inputs), 2)
            return inp((i, j), scale)
        return inp(rng.randrange(n_inputs), scale)
    if r < 0.85:
        return w(rng.randrange(n_weights), scale)
    return const(rng.uniform(-3.2, 3.2))


def random_spec(seed: int, n_qubits: int | None = None, n_ops: int | None = None,
                gates: list[str] | None = None, n_observables: int | None = None,
                max_qubits: int = 10) -> CircuitSpec:
    """A random circuit, reproducible from ``seed``.

    Args:
        seed: the random seed (the only source of randomness).
        n_qubits: qubits (default: drawn from 1..max_qubits).
        n_ops: number of ops (default: drawn from 1..4 * n_qubits + 4).
        gates: gate names to draw from (default: every gate in ``qllm.gates.GATES`` that fits).
        n_observables: number of random Pauli-string observables (default 1..4).
        max_qubits: upper bound when ``n_qubits`` is drawn.

    Returns:
        A CircuitSpec with ``n_inputs`` in 1..4 and ``n_weights`` in 1..8 (some may be unused).
    """
    rng = random.Random(seed)
    n = n_qubits if n_qubits is not None else rng.randint(1, max_qubits)
    names = [g for g in (gates or list(GATES)) if GATES[g].n_qubits <= n]
    n_inputs = rng.randint(1, 4)
    n_weights = rng.randint(1, 8)
    count = n_ops if n_ops is not None else rng.randint(1, 4 * n + 4)
    ops = []
    for _ in range(count):
        g = GATES[rng.choice(names)]
        wires = tuple(rng.sample(range(n), g.n_qubits))
        params = tuple(_param(rng, n_inputs, n_weights) for _ in range(g.n_params))
        ops.append(Op(g.name, wires, params))
    n_obs = n_observables if n_observables is not None else rng.randint(1, 4)
    observables = tuple("".join(rng.choice("IXYZ") for _ in range(n)) for _ in range(n_obs))
    return CircuitSpec(n, tuple(ops), observables, n_inputs, n_weights, name=f"random{seed}")


def all_gates_spec(seed: int, n_qubits: int = 3) -> CircuitSpec:
    """Every gate of the table at least once (in a seeded random order), then random extras."""
    rng = random.Random(seed)
    names = [g for g in GATES if GATES[g].n_qubits <= n_qubits]
    rng.shuffle(names)
    base = random_spec(seed, n_qubits, n_ops=1)
    ops = []
    for name in names:
        g = GATES[name]
        wires = tuple(rng.sample(range(n_qubits), g.n_qubits))
        ops.append(Op(name, wires, tuple(_param(rng, base.n_inputs, base.n_weights)
                                         for _ in range(g.n_params))))
    return CircuitSpec(n_qubits, tuple(ops) + base.ops, base.observables, base.n_inputs,
                       base.n_weights, name=f"all_gates{seed}")


_ENCODERS = ["RY", "RY", "RY", "RX", "RZ", "Rot", "H", "SX", "PhaseShift"]
_ROTATIONS = ["RX", "RY", "RZ", "Rot"]
_ENTANGLERS = ["CNOT"] * 6 + ["SWAP", "CZ", "RZZ"]


def product_spec(seed: int, n_qubits: int | None = None) -> CircuitSpec:
    """The shape of a quantum FFN circuit, drawn at random: one or two single-qubit gates per
    qubit first (mostly reading data), then layers of single-qubit rotations (mostly reading
    weights, sometimes one weight twice) each followed by a ring of one entangler, read out by
    Z/I strings. Most draws take the engine's product-state core with its shift-rule backward;
    some (a CZ or RZZ ring, a PhaseShift, a constant or a weight in the encoding) take its
    autograd fallbacks."""
    rng = random.Random(seed)
    n = n_qubits if n_qubits is not None else rng.randint(1, 6)
    n_inputs, n_weights = rng.randint(1, 4), rng.randint(2, 12)
    entangler = rng.choice(_ENTANGLERS)

    def angle(data: float) -> Param:
        if rng.random() < data:
            return inp(rng.randrange(n_inputs), rng.choice([1.0, 1.0, 0.5]))
        return w(rng.randrange(n_weights), rng.choice([1.0, -0.7])) if rng.random() < 0.9 \
            else const(0.3)

    ops, depth = [], rng.randint(1, 2)
    for q in range(n):
        for name in rng.sample(_ENCODERS, depth):
            ops.append(Op(name, (q,), tuple(angle(0.95) for _ in range(GATES[name].n_params))))
    for _ in range(rng.randint(1, 3)):
        qubits = range(n) if rng.random() < 0.7 else rng.sample(range(n), rng.randint(1, n))
        for q in qubits:
            for name in rng.sample(_ROTATIONS, rng.randint(1, 2)):
                ops.append(Op(name, (q,), tuple(angle(0.0) for _ in range(GATES[name].n_params))))
        for q in range(n if n > 2 else n - 1):
            params = (w(rng.randrange(n_weights)),) if GATES[entangler].n_params else ()
            ops.append(Op(entangler, (q, (q + 1) % n), params))
    n_obs = rng.randint(1, n)
    observables = tuple("".join(rng.choice("IZZ") for _ in range(n)) for _ in range(n_obs))
    return CircuitSpec(n, tuple(ops), observables, n_inputs, n_weights, name=f"product{seed}")
