"""Sweep follow-ups: jobs made once the runs they need have finished, started next in the same
workers (how ``qllm bench`` runs its noise study without a second pool)."""

import json

import pytest

from qllm.errors import ConfigError
from qllm.experiments.sweep import job_path, run_sweep


def _bogus(*ids):
    # a kind no worker knows: each job fails at once, in the order it was started
    return [{"kind": "bogus", "run_id": i} for i in ids]


def test_a_followup_starts_right_after_the_runs_it_waits_for(tmp_path):
    calls = []

    def make():
        calls.append("made")
        return _bogus("x1", "x2")

    summary = run_sweep(_bogus("a", "b", "c", "d"), tmp_path, executor="serial", progress=False,
                        followups=[(["a", "b"], make)])
    assert calls == ["made"]  # made once, not before its runs finished
    assert [f["run_id"] for f in summary["failed"]] == ["a", "b", "x1", "x2", "c", "d"]


def test_followups_skip_done_jobs_wait_only_for_this_sweep_and_refuse_repeats(tmp_path):
    done = {"kind": "train", "run_id": "old"}
    job_path(tmp_path, done).parent.mkdir(parents=True)
    job_path(tmp_path, done).write_text("{}")
    summary = run_sweep(_bogus("a"), tmp_path, executor="serial", progress=False,
                        followups=[(["a", "not-in-this-sweep"], lambda: [done, *_bogus("y")])])
    assert summary["skipped"] == ["old"]
    assert [f["run_id"] for f in summary["failed"]] == ["a", "y"]
    # every run already done: the follow-up still runs (no pool is needed for it)
    summary = run_sweep([done], tmp_path, executor="local", progress=False,
                        followups=[(["old"], lambda: _bogus("z"))])
    assert summary["skipped"] == ["old"] and [f["run_id"] for f in summary["failed"]] == ["z"]
    with pytest.raises(ConfigError, match="unique"):
        run_sweep(_bogus("a"), tmp_path, executor="serial", progress=False,
                  followups=[(["a"], lambda: _bogus("a"))])


def test_the_noise_study_runs_in_the_training_pool(tmp_path):
    from qllm.experiments.bench import noise_jobs, preset_jobs

    jobs = [j for j in preset_jobs("tiny", tasks=["meaning"]) if j["seed"] == 0
            and j["label"] in ("qffn-he-4q", "classical-width")]
    hybrid = [j["run_id"] for j in jobs if j["family"] == "hybrid"]
    summary = run_sweep(jobs, tmp_path, executor="local", workers=2, progress=False,
                        followups=[(hybrid, lambda: noise_jobs("tiny", tmp_path, "meaning"))])
    noise_id = "meaning-qffn-he-4q-seed0-noise"
    assert summary["failed"] == [] and sorted(summary["ran"]) == sorted(
        [j["run_id"] for j in jobs] + [noise_id])
    record = json.loads((tmp_path / "noise" / f"{noise_id}.json").read_text())
    assert record["job"]["source_run"] == hybrid[0]
    assert [r["shots"] for r in record["rows"]] == [None, 512, 128]


def test_qllm_bench_waits_for_the_digits_hybrids_only(monkeypatch, tmp_path):
    import qllm.experiments.bench as bench
    import qllm.experiments.sweep as sweep

    seen = {}

    def fake_sweep(jobs, out, *args):
        seen["jobs"], seen["followups"] = jobs, args[-1]
        return {"ran": [], "skipped": [], "failed": []}

    monkeypatch.setattr(sweep, "run_sweep", fake_sweep)
    monkeypatch.setattr("qllm.experiments.aggregate.write_outputs", lambda *a, **k: [])
    bench.run_preset("tiny", tmp_path, progress=False)
    ((after, make),) = seen["followups"]
    assert sorted(after) == sorted(j["run_id"] for j in seen["jobs"]
                                   if j["task"] == "digits" and j["family"] == "hybrid")
    assert after and make() == []  # nothing trained here, so no run to pick the noise study from
    bench.run_preset("tiny", tmp_path, progress=False, noise=False)
    assert seen["followups"] == []
