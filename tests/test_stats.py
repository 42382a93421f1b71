"""The attribution statistics against scipy on made-up numbers: the paired t interval and test
(scipy.stats.ttest_rel and its confidence_interval), Holm's step-down correction (against the
sequential rejection procedure it is defined by, and a worked example), and the verdicts."""

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from qllm.errors import ConfigError
from qllm.experiments.stats import compare_to_controls, holm, paired_comparison, verdict


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_paired_interval_and_test_match_scipy(n):
    rng = np.random.default_rng(n)
    a = rng.normal(0.9, 0.02, n)
    b = a - 0.01 + rng.normal(0, 0.01, n)
    c = paired_comparison(a, b)
    ref = sps.ttest_rel(a, b)
    lo, hi = ref.confidence_interval(0.95)
    assert c["n"] == n
    assert c["mean"] == pytest.approx(np.mean(a - b), abs=1e-15)
    assert c["sd"] == pytest.approx(np.std(a - b, ddof=1))
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((lo, hi), rel=1e-12)
    assert c["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert c["t"] == pytest.approx(ref.statistic, rel=1e-12)


def test_three_seed_half_width_is_about_two_and_a_half_std():
    c = paired_comparison([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert c["half_width"] / c["sd"] == pytest.approx(sps.t.ppf(0.975, 2) / np.sqrt(3))
    assert 2.4 < c["half_width"] / c["sd"] < 2.5


def test_degenerate_pairs_never_return_nan():
    same = paired_comparison([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert same["p"] == 1.0 and same["half_width"] == 0.0
    shifted = paired_comparison([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])  # every seed +0.1
    assert shifted["p"] == 0.0 and shifted["mean"] == pytest.approx(0.1)
    one = paired_comparison([0.6], [0.5])
    assert one["p"] == 1.0 and one["half_width"] == float("inf")
    with pytest.raises(ConfigError, match="equal lengths"):
        paired_comparison([1, 2], [1])
    with pytest.raises(ConfigError, match="finite"):
        paired_comparison([1, float("nan")], [1, 2])


def _holm_rejects(ps, alpha):
    """Holm's procedure as defined: walk the sorted p-values, reject while p_(i) <= alpha/(m-i)."""
    m = len(ps)
    rejected = set()
    for i, j in enumerate(sorted(range(m), key=lambda k: ps[k])):
        if ps[j] > alpha / (m - i):
            break
        rejected.add(j)
    return rejected


def test_holm_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize("seed", range(20))
def test_holm_adjusted_p_decides_like_the_procedure(seed):
    rng = np.random.default_rng(seed)
    ps = list(rng.uniform(0, 0.2, rng.integers(1, 9)) ** 2)
    adj = holm(ps)
    assert all(a >= p for a, p in zip(adj, ps)) and max(adj) <= 1
    for alpha in (0.001, 0.01, 0.05, 0.1):
        assert {i for i, a in enumerate(adj) if a <= alpha} == _holm_rejects(ps, alpha)


def test_holm_refuses_bad_p_values():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        holm([0.1, float("nan")])


def test_verdicts_in_plain_words():
    tie = paired_comparison([0.90, 0.92, 0.91], [0.91, 0.90, 0.92])
    assert verdict(tie, 1.0, "bottleneck").startswith("quantum-specific gain: not detected")
    assert "width-matched" in verdict(tie, 1.0, "width")
    worse = paired_comparison([0.80, 0.82, 0.81], [0.90, 0.91, 0.92])
    text = verdict(worse, 0.01, "params", scale=100, unit=" points")
    assert text.startswith("hybrid worse than the parameter-matched classical model by 10 ± ")
    # perplexity: a negative difference is the hybrid doing better
    ppl = paired_comparison([18.0, 18.2, 18.1], [20.0, 20.5, 20.1])
    assert verdict(ppl, 0.01, "width", lower_is_better=True).startswith("hybrid better")


def _record(task, label, family, seed, acc, **job):
    return {"job": {"task": task, "label": label, "family": family, "seed": seed, **job},
            "metric": "accuracy", "final": {"accuracy": acc}}


def test_compare_to_controls_pairs_seeds_and_corrects_per_task():
    rng = np.random.default_rng(7)
    recs = []
    acc = {"classical-width": 0.95, "cp": 0.90, "h": 0.90, "h~bottleneck": 0.90}
    for seed, (label, base) in itertools.product(range(4), acc.items()):
        family = {"classical-width": "classical-width", "cp": "classical-params",
                  "h": "hybrid", "h~bottleneck": "bottleneck"}[label]
        extra = ({"param_baseline": "cp", "controls": {"bottleneck": "h~bottleneck"}}
                 if label == "h" else {})
        recs.append(_record("digits", label, family, seed, base + rng.normal(0, 0.01), **extra))
    recs = [r for r in recs if not (r["job"]["label"] == "cp" and r["job"]["seed"] == 3)]
    rows = compare_to_controls(recs, lambda r: r["final"]["accuracy"])
    assert [r["control"] for r in rows] == ["width", "params", "bottleneck"]
    by = {(r["job"]["label"], r["job"]["seed"]): r["final"]["accuracy"] for r in recs}
    params = rows[1]
    assert params["n"] == 3 and params["seeds"] == "0 1 2"  # only the seeds both models ran
    ref = sps.ttest_rel([by[("h", s)] for s in range(3)], [by[("cp", s)] for s in range(3)])
    assert params["p"] == pytest.approx(ref.pvalue)
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p"] for r in rows]))
    assert rows[0]["verdict"].startswith("hybrid worse than the width-matched")  # 5 points down
