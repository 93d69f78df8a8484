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
