"""robtest.baseline: the comparison rules of a record against its baseline entry, on hand-made records."""

from __future__ import annotations

import numpy as np
import pytest

from robtest.baseline import compare, mcnemar, paired_mean_test


def _entry(comparison: str, low: float, high: float) -> dict:
    return {"id": "t.py::test_x::offset_invariance", "property": "offset_invariance", "settings": {},
            "comparison": comparison, "value": (low + high) / 2, "low": low, "high": high, "n": 100}


def _rec(value: float) -> dict:
    return {"property": "offset_invariance", "settings": {},
            "measurement": {"name": "accuracy drop", "value": value, "low": value, "high": value, "details": {}}}


# The baseline's interval is [0.20, 0.30]; a tolerance of 0.05 widens it to [0.15, 0.35] in the worse direction.
@pytest.mark.parametrize(
    ("comparison", "value", "status"),
    [("<=", 0.34, "ok"), ("<=", 0.36, "regression"),
     (">=", 0.16, "ok"), (">=", 0.14, "regression"),
     ("in", 0.16, "ok"), ("in", 0.34, "ok"), ("in", 0.14, "regression"), ("in", 0.36, "regression")],
    ids=["ceiling-within-tolerance", "ceiling-beyond", "floor-within-tolerance", "floor-beyond",
         "range-low-within", "range-high-within", "range-below", "range-above"],
)
def test_the_interval_rule_widens_the_baseline_interval_by_the_tolerance(comparison, value, status):
    out = compare(_entry(comparison, 0.20, 0.30), _rec(value), rec_id="t.py::test_x::offset_invariance",
                  tolerance=0.05, alpha=0.05)
    assert out["method"] == "interval" and out["status"] == status, out["message"]
    assert out["bound"] == pytest.approx([0.15, 0.35])


def test_without_tolerance_the_interval_rule_uses_the_baseline_bound_itself():
    entry = _entry("<=", 0.20, 0.30)
    assert compare(entry, _rec(0.30), rec_id="r", tolerance=0.0, alpha=0.05)["status"] == "ok"
    out = compare(entry, _rec(0.31), rec_id="r", tolerance=0.0, alpha=0.05)
    assert out["status"] == "regression"
    assert "above the baseline's upper bound 0.3" in out["message"]


def _paired_outcomes(rng: np.random.Generator, n: int, lost: float, gained: float) -> tuple[list[int], list[int]]:
    """Outcomes of n samples robust with probability 0.7 in the baseline; now a sample is lost with
    probability ``lost`` and gained with probability ``gained`` (of all samples): the accuracy drops by
    lost − gained."""
    base = rng.random(n) < 0.7
    u = rng.random(n)
    now = np.where(base, u >= lost / 0.7, u < gained / 0.3)
    return base.astype(int).tolist(), now.astype(int).tolist()


@pytest.mark.parametrize(("lost", "gained", "tolerance"), [(0.05, 0.05, 0.0), (0.10, 0.05, 0.05)],
                         ids=["no-change", "drop-equal-to-the-tolerance"])
def test_mcnemar_flags_at_most_alpha_of_the_runs_without_a_regression(lost, gained, tolerance):
    """Under the null (no drop; a drop of exactly the tolerance) the one-sided test rejects at most α = 0.05 of
    1000 seeded simulated runs, to the 0.02 (three standard errors) those runs justify; a real drop is found."""
    rng = np.random.default_rng(0)
    reps = 1000
    rejected = sum(mcnemar(*_paired_outcomes(rng, 200, lost, gained), tolerance=tolerance)["p_value"] < 0.05
                   for _ in range(reps))
    assert rejected / reps <= 0.05 + 0.02
    power = sum(mcnemar(*_paired_outcomes(rng, 200, lost + 0.1, gained), tolerance=tolerance)["p_value"] < 0.05
                for _ in range(100))
    assert power >= 50  # a drop of 0.1 beyond the tolerance on 200 samples: found most of the time


def test_paired_t_test_spends_alpha_at_the_tolerance_by_simulation():
    """Per-sample changes normal with mean equal to the tolerance (the null's boundary): the t-test is exact,
    so it rejects α = 0.05 of 1000 runs, to three standard errors (0.02)."""
    rng = np.random.default_rng(1)
    reps, tol = 1000, 0.02
    rejected = 0
    for _ in range(reps):
        base = rng.random(30)
        now = base + tol + 0.1 * rng.standard_normal(30)
        rejected += paired_mean_test(base.tolist(), now.tolist(), better="lower", tolerance=tol)["p_value"] < 0.05
    assert 0.03 <= rejected / reps <= 0.07


def test_per_class_holm_matches_the_definition_and_finds_the_class_that_lost():
    from robtest.baseline import per_class_changes

    rng = np.random.default_rng(3)
    labels = [int(c) for c in rng.integers(0, 5, size=600)]
    base = [int(b) for b in rng.random(600) < 0.8]
    now = list(base)
    for i, c in enumerate(labels):  # class 2 loses most of its robust points; the others flip at random
        if c == 2 and base[i] and rng.random() < 0.6:
            now[i] = 0
        elif c != 2 and rng.random() < 0.05:
            now[i] = 1 - now[i]
    rows = per_class_changes(base, now, labels, alpha=0.05)
    p = [r["p_value"] for r in rows]
    for r in rows:  # each class's own exact McNemar on its samples
        idx = [i for i, c in enumerate(labels) if c == r["class"]]
        assert r["p_value"] == mcnemar([base[i] for i in idx], [now[i] for i in idx])["p_value"]
    # Holm by its definition: the k-th smallest p times (m - k), running maximum, capped at 1
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1, np.maximum.accumulate([(len(p) - k) * p[i] for k, i in enumerate(order)]))
    assert [rows[i]["p_holm"] for i in order] == pytest.approx(list(adjusted))
    assert [r["class"] for r in rows if r["regressed"]] == [2]


def test_per_class_holm_keeps_the_familywise_error_at_alpha():
    """No class changed (every discordant pair is a fair coin): the chance that any class is flagged stays ≤ α,
    where testing each class at α alone flags some class in about 1 − (1 − α)^10 of the runs."""
    from robtest.baseline import per_class_changes

    rng = np.random.default_rng(11)
    runs, any_holm, any_raw = 400, 0, 0
    for _ in range(runs):
        labels = [int(c) for c in rng.integers(0, 10, size=500)]
        base = [int(b) for b in rng.random(500) < 0.6]
        now = [1 - b if rng.random() < 0.2 else b for b in base]  # symmetric flips: no regression
        rows = per_class_changes(base, now, labels, alpha=0.05)
        any_holm += any(r["regressed"] for r in rows)
        any_raw += any(r["p_value"] < 0.05 for r in rows)
    # binomial tolerance: 400 runs at a true rate ≤ 0.05 exceed 0.085 with probability < 0.002
    assert any_holm / runs <= 0.085
    assert any_raw > any_holm  # uncorrected tests do flag more
