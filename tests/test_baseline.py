"""robtest.baseline: the comparison rules of a record against its baseline entry, on hand-made records."""

from __future__ import annotations

import pytest

from robtest.baseline import compare


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
