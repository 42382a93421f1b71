"""A CostReport as Markdown tables, ready to paste into a README."""

from __future__ import annotations


def _si(v: float | None, unit: str = "") -> str:
    """1234567 -> '1.23M'; None -> '-'."""
    if v is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}{unit}"
    return f"{v:.3g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _seconds(s: float) -> str:
    if s >= 365 * 86400:
        return f"{s / (365 * 86400):.3g} y"
    if s >= 86400:
        return f"{s / 86400:.3g} d"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _money(p: float | None) -> str:
    return "" if p is None else f" (${p:,.2f})" if p >= 0.01 else f" (${p:.2g})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return [line(header), rule] + [line(r) for r in rows]


def format_report(r) -> str:
    s = r.settings
    out = [f"## Resource cost: {r.model}", "",
           (f"seq_len={s['seq_len']}, batch_size={s['batch_size']}, steps/epoch="
           f"{s['steps_per_epoch']}, epochs={s['epochs']}, "
           f"gradient={s['gradient'] or 'per layer'}, "
           f"shots={s['shots']}/circuit, target={s['target']} (Qiskit opt level "
           f"{s['optimization_level']}, seed_transpiler={s['seed_transpiler']})"), ""]
    if r.quantum:
        tgt = s["target"]
        header = ["quantum sublayer", "qubits", "weights", "1q/2q gates", "depth (2q)"]
        if tgt:
            header += [f"1q/2q on {tgt}", f"depth (2q) on {tgt}"]
        header += ["gradient", "circuits/token fwd", "circuits/token train"]
        rows = []
        for q in r.quantum:
            lg, row = q.logical, [q.name, q.n_qubits, q.n_weights]
            row += [f"{lg['n_1q']}/{lg['n_2q']}", f"{lg['depth']} ({lg['depth_2q']})"]
            if tgt:
                t = q.transpiled
                row += [f"{t['n_1q']}/{t['n_2q']}", f"{t['depth']} ({t['depth_2q']})"]
            row += [q.gradient, f"{q.circuits_per_token:g}", f"{q.circuits_per_token_step:g}"]
            rows.append(row)
        out += _table(header, rows) + [""]
    has_base = any(c.baseline_params is not None for c in r.classical)
    header = ["sublayer", "classical params", "circuit weights", "FLOPs/token (fwd)"]
    if has_base:
        header += ["baseline params", "baseline FLOPs/token"]
    rows = []
    for c in r.classical:
        row = [c.name, _si(c.params), c.quantum_weights, _si(c.flops_per_token)]
        if has_base:
            row += [_si(c.baseline_params), _si(c.baseline_flops_per_token)]
        rows.append(row)
    out += _table(header, rows)
    out += ["", ("FLOPs: 2 per multiply-add, matmuls and attention's T x T products (nanoGPT "
            "convention); circuit simulation is not counted as FLOPs.")]
    if r.projections:
        out += ["", f"Projected QPU time (price) at {s['shots']} shots per circuit:", ""]
        rows = []
        for name, pr in r.projections.items():
            cells = [name]
            for key in ("per_step", "per_epoch", "per_run", "per_inference_token"):
                cells.append(_seconds(pr[key]["qpu_seconds"]) + _money(pr[key]["price_usd"]))
            cells.append(_si(pr["per_step"]["executions"]))
            rows.append(cells)
        out += _table(["profile", "train step", "epoch", "full run", "inference token",
                       "circuits/step"], rows)
        out += ["", (f"Shots for a standard error of {s['eps']} per expectation value: "
                f"{s['shots_for_eps']:,} (1/eps^2).")]
        out += ["", "Profiles:"]
        for name, p in r.profiles.items():
            srcs = "; ".join(f"{x['what']} <{x['url']}> ({x['date']})" for x in p["sources"])
            out.append(f"- {name}: {p['description']}. Sources: {srcs}.")
            for a in p["assumptions"]:
                out.append(f"  Assumption: {a}.")
        out += ["", f"The projection leaves out {r.leaves_out}."]
    for key, m in r.measured.items():
        out.append(f"Measured ({key}, {m.get('device', '?')}): forward+backward of "
                   f"{m.get('tokens', '?')} tokens {_seconds(m['wall_seconds_fwd_bwd'])} "
                   f"(median of {m['repeats']}), peak memory {_si(m['peak_bytes'] or None, 'B')} "
                   f"[{m['peak_bytes_kind']}].")
    for n in r.notes:
        out.append(f"Note: {n}.")
    return "\n".join(out)
