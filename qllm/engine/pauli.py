"""Heisenberg-picture core: the observables as Pauli sums, read on each token's product state.

Why: in the quantum-FFN shape (a product-state prefix, one fixed segment W, Z/I observables)
every token's state before W is a product state, and W^dagger O W is a sum of Pauli strings
whose coefficients read only the weights (pauli_walk.py enumerates them once per plan). On a
product state a string's value is the product of its qubits' Bloch components. Cut every string
into halves a | b (the first n // 2 qubits, or one more where that is cheaper: ``cuts``; the
rest): with ``A`` the values of the distinct a-halves and, per observable o, ``B_o`` those of
its distinct b-halves,

    <O_o> = sum_r B_o[r] (C_o A)[r],   C_o[r, a] = the coefficients of the strings (a, r),

so a batch is one matrix product ``C A`` (every observable's rows stacked), one product with the
gathered b-rows and one sum per observable, instead of 2^n-amplitude passes per gate. A half's
values are products of rows of two small Kronecker tables (its quarters' Bloch vectors). Exact,
no truncation. The product state comes in Bloch form (bloch.py), and the batch part and the
prefix's weight-only tail have hand-written backwards (pauli_readout.py, bloch.py) that
recompute under autograd for higher derivatives: any order.
Small circuits whose encoding is one data rotation per qubit have a cheaper readout: the
observables as one multilinear form in each token's (1, cos x, sin x) per qubit
(pauli_features.py, one autograd node in feature_core.py); ``pauli_expval`` takes whichever
the cost models say is cheaper.
The cost model (``pauli_cost_us``) weighs it against the Kronecker and dense cores: shallow
circuits have few strings, deep ones many (or none: the walk gives up past MAX_PATHS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qllm.engine.bloch import bloch_rows, head_angles, tail_tables
from qllm.engine.encode import split_prefix
from qllm.engine.feature_core import FeatureCore
from qllm.engine.pauli_features import FeatureProgram, feature_program
from qllm.engine.pauli_readout import PauliReadout, Rows
from qllm.engine.pauli_walk import path_factors, walk
from qllm.engine.plan import Plan, decided, on_device

# Cost model in fused.py's units, fitted on a 2-core CPU against the other cores' models
# (benchmarks/auto_choice.py, n = 4..10, B = 256..16384, 2 and 3 layers; refitted after the
# Bloch-form prefix, bloch.py): the small ops, then per token ROW_NS for each row gathered,
# multiplied and read (forward and backward) and GEMM_NS per multiply-add of the products with C.
BASE_US, ROW_NS, GEMM_NS = 200.0, 0.037, 0.0019
UNEVEN_MAX = 9  # the largest n whose halves may be cut unevenly (``cuts``)


@dataclass
class PauliProgram:
    inst_slot: torch.Tensor  # [R] each rotation instance's index into the shared vector
    inst_mult: torch.Tensor  # [R] its multiplier: angle = shared[slot] * mult
    factors: torch.Tensor  # [P, D] each path's factors, into [1, cos(angles), sin(angles)]
    coef: torch.Tensor  # [P] each path's constant coefficient
    slot: torch.Tensor  # [P] each path's entry of C [rows, UA], flattened
    split: int  # half a: qubits [0, split); half b: [split, n)
    rows_a: tuple  # ([UA], [UA]): each distinct a-half's rows in its quarters' tables
    rows_b: tuple  # ([rows], [rows]): each row's b-half, the same way
    row_obs: torch.Tensor  # [rows] the observable each row adds to
    n_paths: int
    priced_ns: float | None = None  # the time per token cost_us prices (None: token_ns)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, UA): the matrix C."""
        return len(self.row_obs), len(self.rows_a[0])

    def cost_us(self, n: int, batch: int) -> float:
        per_token = self.token_ns(n) if self.priced_ns is None else self.priced_ns
        return BASE_US + batch * per_token / 1e3

    def token_ns(self, n: int) -> float:
        """The model's time per token: the rows it gathers, multiplies and reads, and C A."""
        rows, UA = self.shape
        tables = sum(4**len(q) for q in quarters(n, self.split))
        return (3 * UA + 5 * rows + tables) * ROW_NS + 3 * rows * UA * GEMM_NS


def pauli_program(plan: Plan) -> PauliProgram | None:
    """The plan's propagated observables, cached on the plan (None: the core declines)."""
    if "pauli" not in plan.cache:
        # the prefix's weight-only tail must fit BlochTail's tables (every gate does today)
        fits = plan.prefix is not None and plan.n_qubits > 1 \
            and (not split_prefix(plan)[1] or tail_tables(plan) is not None)
        walked = walk(list(plan.rest), plan.observables, plan.sources) if fits else None
        plan.cache["pauli"] = None if walked is None else _cheapest_cut(plan, walked)
    return plan.cache["pauli"]


def _cheapest_cut(plan: Plan, walked: tuple) -> PauliProgram:
    """The program at the cut the model prices lower, priced as the balanced cut: the models
    that choose between the cores and readouts were fitted on balanced cuts, and at (n = 5,
    3 layers, B = 4096) the uneven cut's lower price made auto take this core at 1.2x the
    dense one's time. Where the uneven cut runs, that price is an upper bound."""
    n = plan.n_qubits
    programs = [_program(plan, *walked, cut) for cut in cuts(n)]
    best = min(programs, key=lambda p: p.token_ns(n))  # the balanced cut on a tie
    best.priced_ns = programs[0].token_ns(n)
    return best


def cuts(n: int) -> list[int]:
    """The cuts between halves a and b that ``pauli_program`` prices (the cheaper is kept, the
    balanced one on a tie): n // 2, and up to UNEVEN_MAX qubits n // 2 + 1. Why both: the
    uneven cut halves C's rows where the paths end in few distinct b-halves; measured 4-23%
    faster at n = 4..9 wherever the model prefers it, but 5-10% slower at n = 10 and 11, where
    its wider a-half outgrows the cache and the model still prefers it by 1-5%."""
    return [n // 2] + ([n // 2 + 1] if n // 2 + 1 < n and n <= UNEVEN_MAX else [])


def quarters(n: int, split: int) -> list[range]:
    """Halves a = [0, split) and b = [split, n), each cut in two (a one-qubit half stays
    whole): their Bloch vectors' Kronecker tables are small, and a half-string's value is the
    product of one row of each of its two quarters' tables."""
    out = []
    for lo, hi in ((0, split), (split, n)):
        mid = lo + (hi - lo) // 2
        out += [range(lo, mid), range(mid, hi)] if hi - lo > 1 else [range(lo, hi), range(hi, hi)]
    return out


def _program(plan: Plan, paths: list, insts: list, h: int) -> PauliProgram:
    n = plan.n_qubits
    paths = [p for p in paths if p[1] != 0.0]
    ids_a, rows = {}, {}  # distinct a-halves; (observable, b-half) -> row of C
    for s, _, _, o in paths:
        ids_a.setdefault(s[:h], len(ids_a))
        rows.setdefault((o, s[h:]), len(rows))
    cut_a, cut_b = len(quarters(n, h)[0]), len(quarters(n, h)[2])
    depth = max((len(p[2]) for p in paths), default=0)
    return PauliProgram(
        torch.tensor([i for i, _ in insts], dtype=torch.long),
        torch.tensor([a for _, a in insts], dtype=torch.float64),
        torch.tensor([list(p[2]) + [0] * (depth - len(p[2])) for p in paths],
                     dtype=torch.long).view(len(paths), depth),
        torch.tensor([p[1] for p in paths], dtype=torch.float64),
        torch.tensor([rows[o, s[h:]] * len(ids_a) + ids_a[s[:h]] for s, _, _, o in paths],
                     dtype=torch.long),
        h, _quarter_rows(list(ids_a), cut_a), _quarter_rows([b for _, b in rows], cut_b),
        torch.tensor([o for o, _ in rows], dtype=torch.long), len(paths))


def _quarter_rows(halves: list[tuple], cut: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each half-string's rows in its two quarters' Kronecker tables (the first qubit most
    significant; the string cut after ``cut`` letters)."""
    row = lambda letters: int("".join(map(str, letters)), 4) if letters else 0  # noqa: E731
    return (torch.tensor([row(s[:cut]) for s in halves], dtype=torch.long),
            torch.tensor([row(s[cut:]) for s in halves], dtype=torch.long))


def _feature_program(plan: Plan, device, dtype) -> FeatureProgram:
    """``FeatureCore``'s program on ``device`` in ``dtype``, cached on the plan."""
    key = ("feature_program", device, dtype)
    if key not in plan.cache:
        plan.cache[key] = feature_program(plan).to(device, dtype)
    return plan.cache[key]


def pauli_cost_us(plan: Plan, batch: int) -> float | None:
    """Estimated forward + backward time of ``pauli_expval`` in fused.py's units (None when the
    core declines): its cheaper readout's."""
    prog = pauli_program(plan)
    if prog is None:
        return None
    return min(prog.cost_us(plan.n_qubits, batch), _feature_cost_us(plan, batch))


def _feature_cost_us(plan: Plan, batch: int) -> float:
    """The feature route's estimate (pauli_features.py; inf where it declines)."""
    program = feature_program(plan)
    return math.inf if program is None else program.cost_us(batch)


def takes_features(plan: Plan, batch: int) -> bool:
    """Whether ``pauli_expval`` reads a batch of ``batch`` tokens on the feature route (the
    cheaper readout by the cost models; cached on the plan)."""
    return decided(plan, ("features", batch), lambda: _feature_cost_us(plan, batch)
                   < pauli_program(plan).cost_us(plan.n_qubits, batch))


def pauli_expval(plan: Plan, ctx, data, dtype, H: int = 1) -> torch.Tensor:
    """Z/I expectation values ``[H, B, k]`` of the plan from its Pauli program.

    Args:
        ctx: the angle source of the weights: an AngleContext (H = 1) or StackedAngles.
        data: the AngleContext of the ``H * B`` tokens (the encoding's data columns).
        dtype: the complex dtype of an encoding that runs as 2-vectors (bloch.py).
    """
    prog, n = pauli_program(plan), plan.n_qubits
    shared = ctx.shared if ctx.shared.dim() == 2 else ctx.shared.unsqueeze(0)  # [H, S]
    device, real_dtype = shared.device, shared.dtype
    if takes_features(plan, data.B):  # the encoding's features: one node (feature_core.py)
        program = _feature_program(plan, device, real_dtype)
        return FeatureCore.apply(shared, head_angles(plan, data, H), program).transpose(1, 2)
    table = lambda t: on_device(t, device, None if t.dtype == torch.long else real_dtype)  # noqa: E731
    picked = path_factors(shared, table(prog.inst_slot), table(prog.inst_mult),
                          table(prog.factors).flatten(), *prog.factors.shape)[0]
    coef = picked.prod(-1) * table(prog.coef)  # [H, P]
    rows, UA = prog.shape
    C = coef.new_zeros(H, rows * UA).index_add(1, table(prog.slot), coef).view(H, rows, UA)
    index = Rows(tuple(quarters(n, prog.split)), tuple(map(table, prog.rows_a)),
                 tuple(map(table, prog.rows_b)), table(prog.row_obs), len(plan.observables))
    # qubit-major [H, n, 4, B]: the prefix's shared parts are one small product per qubit
    return PauliReadout.apply(bloch_rows(plan, shared, data, dtype, H), C, index).transpose(1, 2)
