"""Rebuild the benchmark figures of a results folder and check them as a journal would: formats,
width, smallest font, one colour per model, error bars inside [0, 100]%, labelled log ticks.

    python benchmarks/figure_check.py --results results/quick   # after `make bench`

Prints one row per figure and writes ``OUT/figure_check.json`` (default OUT: the results folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.text import Text

from qllm.experiments import plot_style, plots
from qllm.experiments.aggregate import aggregate, load_records, noise_rows
from qllm.results import versions


def _properties(name: str, fig) -> dict:
    FigureCanvasAgg(fig).draw()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    colours, ys, ticks = {}, [], []
    for ax in (a for a in fig.axes if a.get_visible()):
        for line in ax.lines:
            if (line.get_gid() or "").startswith("model:"):
                colours.setdefault(line.get_gid()[6:], set()).add(str(line.get_color()))
        for c in ax.collections:
            if isinstance(c, LineCollection):
                ys += [y for seg in c.get_segments() for _, y in seg]
        if ax.get_xscale() == "log":
            lo, hi = ax.get_xlim()
            ticks.append(sum(1 for t in ax.get_xticklabels()
                             if t.get_text() and lo <= t.get_position()[0] <= hi))
    return {"figure": name, "width_in": round(float(fig.get_size_inches()[0]), 2),
            "min_font_pt": min(t.get_fontsize() for t in texts), "models": len(colours),
            "one_colour_per_model": all(len(c) == 1 for c in colours.values()),
            "error_bars_in_0_100": all(0 <= y <= 100 for y in ys) if ys else None,
            "min_log_ticks": min(ticks) if ticks else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results/quick", help="a qllm bench results folder")
    ap.add_argument("--out", help="where figure_check.json goes (default: --results)")
    args = ap.parse_args(argv)
    root = Path(args.results)
    runs = sorted((root / "runs").glob("*.json"))
    if not runs:
        print(f"figure_check: no run JSON under {root / 'runs'}; run `make bench` first",
              file=sys.stderr)
        return 2
    records = load_records(runs)
    nrows = noise_rows(load_records(sorted((root / "noise").glob("*.json"))))
    kept, save = {}, plot_style.save

    def keep(fig, stem):  # every figure plot_all writes, kept to measure
        kept[stem.name] = fig
        return save(fig, stem)

    plot_style.save = keep
    t0 = time.perf_counter()
    try:
        paths = plots.plot_all(root, aggregate(records), records, nrows)
    finally:
        plot_style.save = save
    seconds = time.perf_counter() - t0
    rows = [_properties(name, fig) for name, fig in kept.items()]
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    print(f"{len(paths)} files ({sum(p.suffix == '.pdf' for p in paths)} PDF) in {seconds:.1f} s "
          f"under {root / 'figures'}")
    out = Path(args.out or root) / "figure_check.json"
    out.write_text(json.dumps({"results": str(root), "runs": len(runs), "figures": rows,
                               "files": [str(p) for p in paths], "seconds": seconds,
                               "date": time.strftime("%Y-%m-%d %H:%M %Z"),
                               "versions": versions()}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
