"""``qllm attribution DIR``: does the quantum part help? Every hybrid of a benchmark folder
(``qllm bench --out``) against its controls, seed-paired, with 95% intervals, Holm-corrected
paired t-tests and verdicts, and the Pareto frontiers; from the run JSON files alone."""

from __future__ import annotations

import json
from pathlib import Path

from qllm.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("attribution", help="hybrids against their controls: intervals, tests, "
                       "verdicts, Pareto frontiers")
    p.add_argument("results", help="a benchmark folder with runs/*.json, e.g. results/quick")
    p.add_argument("--json", action="store_true", help="print the comparisons as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from qllm.experiments.aggregate import aggregate, load_records, metric_of
    from qllm.experiments.pareto import pareto_markdown
    from qllm.experiments.stats import compare_to_controls, comparisons_markdown

    paths = sorted((Path(args.results) / "runs").glob("*.json"))
    if not paths:
        raise ConfigError(f"results={args.results!r} holds no runs/*.json; give the folder a "
                          "`qllm bench --out OUT --preset NAME` wrote (OUT/NAME)")
    records = load_records(paths)
    comparisons = compare_to_controls(records, metric_of)
    if args.json:
        print(json.dumps(comparisons, indent=2))
        return 0
    print(comparisons_markdown(comparisons))
    print("\nPareto frontiers (non-dominated models)\n" + pareto_markdown(aggregate(records)))
    return 0
