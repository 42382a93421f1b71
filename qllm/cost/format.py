"""A CostReport as Markdown tables (to paste into a README) or as HTML (its rich display in
notebooks). Both render the same blocks: ``report_blocks(report)`` -> ``[(kind, payload)]``
with kind "h" (heading), "p" (paragraph), "table" ((header, rows)) or "list" (items).
"""

from __future__ import annotations

import html


def _si(v: float | None, unit: str = "") -> str:
    """1234567 -> '1.23M'; None -> '-'."""
    if v is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}{unit}"
    return f"{v:.3g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def human_seconds(s: float) -> str:
    """4.9e5 -> '5.67 d'; 0.002 -> '2 ms'."""
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


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return [line(header), rule] + [line(r) for r in rows]


def _quantum_table(r) -> tuple[list[str], list[list]]:
    tgt = r.settings["target"]
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
    return header, rows


def _classical_table(r) -> tuple[list[str], list[list]]:
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
    return header, rows


def _projection_blocks(r) -> list[tuple]:
    s = r.settings
    rows = []
    for name, pr in r.projections.items():
        cells = [name]
        for key in ("per_step", "per_epoch", "per_run", "per_inference_token"):
            cells.append(human_seconds(pr[key]["qpu_seconds"]) + _money(pr[key]["price_usd"]))
        cells.append(_si(pr["per_step"]["executions"]))
        rows.append(cells)
    profiles = []
    for name, p in r.profiles.items():
        srcs = "; ".join(f"{x['what']} <{x['url']}> ({x['date']})" for x in p["sources"])
        profiles.append(f"{name}: {p['description']}. Sources: {srcs}."
                        + "".join(f" Assumption: {a}." for a in p["assumptions"]))
    return [("p", f"Projected QPU time (price) at {s['shots']} shots per circuit:"),
            ("table", (["profile", "train step", "epoch", "full run", "inference token",
                        "circuits/step"], rows)),
            ("p", f"Shots for a standard error of {s['eps']} per expectation value: "
                  f"{s['shots_for_eps']:,} (1/eps^2)."),
            ("p", "Profiles:"), ("list", profiles),
            ("p", f"The projection leaves out {r.leaves_out}.")]


def report_blocks(r) -> list[tuple]:
    """The report as ``[(kind, payload)]`` blocks (see the module docstring)."""
    s = r.settings
    blocks = [("h", f"Resource cost: {r.model}"),
              ("p", f"seq_len={s['seq_len']}, batch_size={s['batch_size']}, steps/epoch="
                    f"{s['steps_per_epoch']}, epochs={s['epochs']}, "
                    f"gradient={s['gradient'] or 'per layer'}, "
                    f"shots={s['shots']}/circuit, target={s['target']} (Qiskit opt level "
                    f"{s['optimization_level']}, seed_transpiler={s['seed_transpiler']})")]
    if r.quantum:
        blocks.append(("table", _quantum_table(r)))
    blocks += [("table", _classical_table(r)),
               ("p", "FLOPs: 2 per multiply-add, matmuls and attention's T x T products (nanoGPT "
                     "convention); circuit simulation is not counted as FLOPs.")]
    if r.projections:
        blocks += _projection_blocks(r)
    for key, m in r.measured.items():
        blocks.append(("p", f"Measured ({key}, {m.get('device', '?')}): forward+backward of "
                            f"{m.get('tokens', '?')} tokens "
                            f"{human_seconds(m['wall_seconds_fwd_bwd'])} (median of "
                            f"{m['repeats']}), peak memory {_si(m['peak_bytes'] or None, 'B')} "
                            f"[{m['peak_bytes_kind']}]."))
    blocks += [("p", f"Note: {n}.") for n in r.notes]
    return blocks


def _render(r, renderers: dict) -> list[str]:
    """Each of ``report_blocks(r)`` through the renderer for its kind ("h", "table", "list",
    or "p" for a paragraph): the one walk both output formats share."""
    out = []
    for kind, payload in report_blocks(r):
        out += renderers[kind](payload)
    return out


# Markdown: a blank line after every block
_MARKDOWN = {"h": lambda p: [f"## {p}", ""], "table": lambda p: [*_md_table(*p), ""],
             "list": lambda p: [*(f"- {item}" for item in p), ""], "p": lambda p: [p, ""]}


def format_report(r) -> str:
    """The report as Markdown (``str(report)``)."""
    return "\n".join(_render(r, _MARKDOWN)).rstrip() + "\n"


TABLE_STYLE = "border-collapse:collapse;font-size:0.85em;white-space:nowrap"
CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #ddd"


def html_table(header: list, rows: list[list]) -> str:
    """A compact HTML table in a horizontal scroll box (wide tables scroll, never wrap)."""
    th = "".join(f'<th style="{CELL_STYLE};text-align:left">{html.escape(str(h))}</th>'
                 for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{CELL_STYLE}">{html.escape(str(c))}</td>'
                                    for c in row) + "</tr>" for row in rows)
    return (f'<div style="overflow-x:auto"><table style="{TABLE_STYLE}"><thead><tr>{th}</tr>'
            f"</thead><tbody>{body}</tbody></table></div>")


_HTML = {"h": lambda p: [f"<h4>{html.escape(p)}</h4>"], "table": lambda p: [html_table(*p)],
         "list": lambda p: ['<ul style="font-size:0.85em">' + "".join(
             f"<li>{html.escape(i)}</li>" for i in p) + "</ul>"],
         "p": lambda p: [f'<p style="font-size:0.9em">{html.escape(p)}</p>']}


def format_report_html(r) -> str:
    """The report as HTML (the notebook display of a CostReport)."""
    return "<div>" + "".join(_render(r, _HTML)) + "</div>"
