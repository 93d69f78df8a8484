"""robtest.verdict.decide: each verdict rule reads the right end of the interval, for floors, ceilings and ranges."""

from __future__ import annotations

import pytest

from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.verdict import RULES, decide

# The estimate 0.5 with the interval [0.4, 0.6]: point reads 0.5, confident the worse end, plausible the better.
M = Measurement("rate", 0.5, 0.4, 0.6, n=100)


def _expected(comparison, threshold):
    """The three verdicts from the definitions, written out per rule (not through decide's lookup table)."""
    if comparison == ">=":
        return {"point": M.value >= threshold, "confident": M.low >= threshold, "plausible": M.high >= threshold}
    if comparison == "<=":
        return {"point": M.value <= threshold, "confident": M.high <= threshold, "plausible": M.low <= threshold}
    lo, hi = threshold
    return {"point": lo <= M.value <= hi, "confident": lo <= M.low and M.high <= hi,
            "plausible": M.high >= lo and M.low <= hi}


@pytest.mark.parametrize("comparison,threshold,verdicts", [
    # A threshold the interval straddles separates the three rules; one outside it makes them agree.
    (">=", 0.45, {"point": True, "confident": False, "plausible": True}),
    (">=", 0.55, {"point": False, "confident": False, "plausible": True}),
    (">=", 0.3, {"point": True, "confident": True, "plausible": True}),
    (">=", 0.7, {"point": False, "confident": False, "plausible": False}),
    ("<=", 0.55, {"point": True, "confident": False, "plausible": True}),
    ("<=", 0.45, {"point": False, "confident": False, "plausible": True}),
    ("<=", 0.7, {"point": True, "confident": True, "plausible": True}),
    ("<=", 0.3, {"point": False, "confident": False, "plausible": False}),
    ("in", (0.45, 0.9), {"point": True, "confident": False, "plausible": True}),
    ("in", (0.1, 0.45), {"point": False, "confident": False, "plausible": True}),
    ("in", (0.3, 0.7), {"point": True, "confident": True, "plausible": True}),
    ("in", (0.7, 0.9), {"point": False, "confident": False, "plausible": False}),
], ids=["floor-straddled-below-estimate", "floor-straddled-above-estimate", "floor-below", "floor-above",
        "ceiling-straddled-above-estimate", "ceiling-straddled-below-estimate", "ceiling-above", "ceiling-below",
        "range-straddles-low", "range-straddles-high", "range-holds-interval", "range-misses"])
def test_each_rule_reads_its_end_of_the_interval(comparison, threshold, verdicts):
    assert verdicts == _expected(comparison, threshold)
    assert {r: decide(M, threshold, comparison, r) for r in RULES} == verdicts


@pytest.mark.parametrize("comparison,threshold", [(">=", 0.4), ("<=", 0.6), ("in", (0.4, 0.6))],
                         ids=["floor", "ceiling", "range"])
def test_an_interval_end_on_the_threshold_passes_every_rule(comparison, threshold):
    assert all(decide(M, threshold, comparison, r) for r in RULES)


def test_unknown_rule_is_named():
    with pytest.raises(InvalidArgument, match=r"rule: expected one of \('point', 'confident', 'plausible'\) "
                       r"but got 'strict'"):
        decide(M, 0.5, ">=", "strict")


def test_rounding_never_hides_why_a_value_failed_its_threshold():
    from robtest.measurement import Measurement
    from robtest.summary import summary_rows
    from robtest.verdict import Verdict

    m = Measurement("accuracy", 0.11987, 0.1, 0.14, n=100)
    v = Verdict("accuracy_floor", m, 0.12, ">=", "point", met=False)
    assert "is below the floor 0.12 (the value is 0.11987)" in v.message()
    row = summary_rows([{**v.to_record(), "test": "t", "outcome": "failed"}])[0]
    assert row[3].startswith("0.1199 [0.100–0.140]") and row[4] == ">= 0.12" and row[5] == "FAIL"
    far = Verdict("accuracy_floor", Measurement("accuracy", 0.5, 0.4, 0.6, n=100), 0.12, ">=", "point", met=True)
    assert "the value is" not in far.message() and summary_rows([{**far.to_record(), "test": "t"}])[0][3][:5] == "0.500"
