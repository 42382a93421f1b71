"""Measurements of a converted tape: Pauli expectation values straight from the engine, the rest
from the engine's final state through PennyLane's own measurement functions.

Fast path (analytic, every measurement an expectation value of a Pauli word or a sum of them):
all distinct Pauli words of the tape become the spec's observables and run as one ``simulate``
call (which may take the engine's product-state core); sums are then combined with their
coefficients (trainable coefficients keep their gradients). Everything else (probabilities,
variances, states, samples, counts, Hermitian observables, finite shots) takes the final state
``simulate_state`` returns and hands it to ``pennylane.devices.qubit.measure_final_state``, the
function default.qubit uses, so shot vectors, seeds and return shapes match default.qubit's.
"""

from __future__ import annotations

import numpy as np
import torch

from qllm.engine import simulate, simulate_state
from qllm.interop.pennylane_tape import TapeProgram


def _pauli_terms(mp, n: int):
    """``[(label, coeff)]`` of an expectation value of a Pauli word or sum, else None."""
    from pennylane.measurements import ExpectationMP

    if not isinstance(mp, ExpectationMP) or mp.obs is None or mp.mv is not None:
        return None
    rep = mp.obs.pauli_rep
    if rep is None:
        return None
    terms = []
    for word, coeff in rep.items():
        label = ["I"] * n
        for wire, pauli in word.items():
            label[int(wire)] = pauli
        terms.append(("".join(label), coeff))
    return terms


def _real(coeff):
    if torch.is_tensor(coeff):
        return coeff.real if coeff.is_complex() else coeff
    return float(np.real(coeff))


def pauli_expvals(program: TapeProgram, measurements, strategy: str = "auto"):
    """Expectation values of Pauli words and sums, one engine call; None if any measurement is
    of another kind. Returns one tensor per measurement, ``[B]`` when broadcast, else ``[]``."""
    n = program.spec.n_qubits
    per_mp = [_pauli_terms(mp, n) for mp in measurements]
    if any(t is None for t in per_mp):
        return None
    words = sorted({label for terms in per_mp for label, _ in terms if set(label) != {"I"}})
    vals = None
    if words:
        spec = program.spec.with_observables(words)
        vals = simulate(spec, program.inputs, program.weights, strategy)  # [B, n_words]
    column = {label: i for i, label in enumerate(words)}
    ones = torch.ones(program.inputs.shape[0], dtype=program.inputs.dtype)
    out = []
    for terms in per_mp:
        total = 0.0
        for label, coeff in terms:
            col = ones if label not in column else vals[:, column[label]]
            total = total + _real(coeff) * col
        if not torch.is_tensor(total):  # an empty sum
            total = 0.0 * ones
        total = total.to(program.inputs.dtype)  # keep the device's precision
        out.append(total if program.batch_size else total[0])
    return out


def final_state(program: TapeProgram, strategy: str = "auto") -> torch.Tensor:
    """The state as PennyLane lays it out: ``[B, 2, ..., 2]`` (``[2, ..., 2]`` unbroadcast),
    complex, with the tape's global phase applied."""
    n = program.spec.n_qubits
    state = simulate_state(program.spec, program.inputs, program.weights, strategy)
    if not state.is_complex():
        state = state.to(torch.complex128 if state.dtype == torch.float64 else torch.complex64)
    if program.phase is not None:
        state = state * program.phase.to(state.dtype)[:, None]
    shape = (2,) * n
    return state.reshape(-1, *shape) if program.batch_size else state.reshape(shape)


def measure_tape(tape, program: TapeProgram, rng, as_torch: bool, strategy: str = "auto"):
    """Results of one tape, as default.qubit returns them.

    Args:
        tape: the standard-wire tape ``program`` was built from.
        program: its engine arguments.
        rng: ``numpy.random.Generator`` for finite shots.
        as_torch: keep torch tensors (the torch interface); else return numpy.
        strategy: the engine's strategy.
    """
    from pennylane.devices.qubit.simulate import measure_final_state

    if not tape.shots:
        fast = pauli_expvals(program, tape.measurements, strategy)
        if fast is not None:
            if not as_torch:
                fast = [r.detach().numpy() for r in fast]
            return fast[0] if len(fast) == 1 else tuple(fast)
    state = final_state(program, strategy)
    if tape.shots or not as_torch:
        state = state.detach().numpy()  # sampling needs no gradient; numpy is PennyLane's home
    return measure_final_state(tape, state, program.batch_size is not None, rng=rng)
