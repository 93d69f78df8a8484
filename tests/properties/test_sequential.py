"""The sequential procedure: planned looks, error spending, early stops, honest intervals under optional stopping."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy import stats as st

from robtest.errors import InvalidArgument
from robtest.properties.sequential import (
    SequentialCheck,
    hoeffding_interval,
    look_schedule,
    sequential_mean,
    spending,
)
from robtest.stats import clopper_pearson


def test_looks_are_planned_and_spending_adds_up():
    assert look_schedule(1000, 100) == (100, 200, 400, 800, 1000)
    assert sum(spending(5, 0.05)) == pytest.approx(0.05)
    assert spending(5, 0.05)[-1] == 0.025


def test_stops_early_when_far_from_the_threshold_and_not_when_close():
    rng = np.random.default_rng(0)
    far = rng.random(2000) < 0.95
    _, low, high, used = sequential_mean(far, threshold=0.7, comparison=">=", first=50)
    assert used < 400 and low >= 0.7
    close = rng.random(2000) < 0.71
    _, low, high, used = sequential_mean(close, threshold=0.7, comparison=">=", first=50)
    assert used == 2000 and low < 0.7 < high


def test_final_interval_is_the_one_spent_at_the_final_look():
    v = np.r_[np.ones(70), np.zeros(30)]
    est, low, high, used = sequential_mean(v, threshold=0.7, comparison=">=", first=100)
    # one look only (n <= batch): the whole alpha goes there, an ordinary exact interval
    lo, hi = clopper_pearson(70, 100, alpha=0.05)
    assert (used, est, low, high) == (100, 0.7, pytest.approx(float(lo)), pytest.approx(float(hi)))


@pytest.mark.parametrize(("kind", "p"), [("proportion", 0.72), ("proportion", 0.9), ("mean", 0.55)])
def test_coverage_under_optional_stopping(kind, p):
    """Simulate many sequential runs near and away from the threshold: the reported interval at the stopping
    time covers the truth at least 95% of the time (the naive per-look interval would not)."""
    rng = np.random.default_rng(4)
    reps, n, batch, thr = 400, 800, 25, 0.7
    if kind == "proportion":
        streams = (rng.random((reps, n)) < p).astype(float)
    else:
        streams = rng.beta(2 * p / (1 - p), 2, size=(reps, n))  # values in [0, 1] with mean p
    cover, used = 0, []
    for s in streams:
        _, low, high, k = sequential_mean(s, threshold=thr, comparison=">=", first=batch, kind=kind)
        cover += low <= p <= high
        used.append(k)
    assert cover / reps >= 0.95 - 0.02  # s.e. of a 95% rate over 400 runs: 1.1%
    if p == 0.9:
        assert np.mean(used) < n / 2  # clearly above the floor: most runs stop at an early look


def test_naive_repeated_looks_would_undercover():
    """The reason for spending alpha: a 95% interval recomputed after every batch misses the truth at *some*
    look far more often than 5%, so a rule that may stop at any look cannot report it; the sequential
    interval at its stopping time still covers."""
    rng = np.random.default_rng(5)
    p, thr, reps, n, batch = 0.7, 0.7, 300, 1600, 25
    naive_miss = seq_miss = 0
    for _ in range(reps):
        s = rng.random(n) < p
        c = np.cumsum(s)
        looks = np.arange(batch, n + 1, batch)
        lo, hi = clopper_pearson(c[looks - 1], looks, alpha=0.05)
        naive_miss += bool(np.any((lo > p) | (hi < p)))
        _, low, high, _ = sequential_mean(s, threshold=thr, comparison=">=", first=batch)
        seq_miss += not low <= p <= high
    assert seq_miss / reps <= 0.05
    assert naive_miss / reps > 0.2


@pytest.mark.parametrize("kind", ["proportion", "mean"])
def test_each_look_spends_its_own_alpha(kind):
    """Look k of K reports the interval at α/(2(K−1)) (interim) or α/2 (the last): the α spent adds up to α."""
    alpha, n_total, first = 0.05, 1000, 100
    check = SequentialCheck(n_total=n_total, first=first, threshold=0.5, comparison=">=", kind=kind)
    planned = check.planned
    assert planned == (100, 200, 400, 800, 1000)
    k = len(planned)
    spent = [alpha / (2 * (k - 1))] * (k - 1) + [alpha / 2]
    for look, a in zip(planned, spent, strict=True):
        total = 0.5 * look  # right at the threshold: no look decides, every look is taken
        assert not check(total, look)
        got = check.interval(total, look)
        if kind == "proportion":
            want = tuple(float(v) for v in clopper_pearson(int(total), look, alpha=a))
        else:
            h = math.sqrt(math.log(2 / a) / (2 * look))
            want = (0.5 - h, 0.5 + h)
        assert got == pytest.approx(want, rel=1e-12), (look, a)
    assert check.looks_taken == k and sum(spent) == pytest.approx(alpha)


def _exact_error(p: float, *, n_total: int, first: int, threshold: float, kind: str = "proportion",
                 naive: bool = False) -> float:
    """The exact probability that the sequential procedure on Bernoulli(p) outcomes reports an interval that
    misses p: the counts' distribution carried from look to look (binomial increments), each look's decision
    and interval taken from SequentialCheck itself (for ``kind="mean"`` the 0/1 values are values in [0, 1]
    and the Hoeffding interval depends on their sum only). ``naive`` spends the whole α at every look."""
    check = SequentialCheck(n_total=n_total, first=first, threshold=threshold, comparison=">=", kind=kind)
    if naive:
        check.alphas = (0.05,) * len(check.planned)
    dist, prev, miss = np.ones(1), 0, 0.0
    for i, n in enumerate(check.planned):
        dist = np.convolve(dist, st.binom.pmf(np.arange(n - prev + 1), n - prev, p))
        prev = n
        for c in np.flatnonzero(dist > 1e-15):
            at = copy.deepcopy(check)
            at.looks_taken = i
            stops = at(float(c), n) or i == len(check.planned) - 1
            if stops:
                low, high = at.interval(float(c), n)
                miss += dist[c] * (not low <= p <= high)
                dist[c] = 0.0
    return miss


@pytest.mark.parametrize("kind", ["proportion", "mean"])
@pytest.mark.parametrize("p", [0.6, 0.7, 0.75, 0.9])
def test_error_spent_is_at_most_alpha_exactly(p, kind):
    """Not a simulation: the exact error rate of the whole procedure (looks at 25, 50, ..., 400 and 500), at
    and around the threshold, is within α = 0.05; a 95% interval at every look would not be."""
    err = _exact_error(p, n_total=500, first=25, threshold=0.7, kind=kind)
    assert err <= 0.05
    if p == 0.7 and kind == "proportion":  # at the threshold optional stopping bites: the naive rule errs more
        assert _exact_error(p, n_total=500, first=25, threshold=0.7, naive=True) > 0.1


def test_hoeffding_interval_and_bad_arguments():
    assert hoeffding_interval(0.0, 0, alpha=0.05) == (0.0, 1.0)
    lo, hi = hoeffding_interval(10.0, 10, alpha=0.05)
    # mean 1 ± √(ln(2/α)/(2n)), clipped to [0, 1]
    assert hi == 1.0 and lo == pytest.approx(1 - math.sqrt(math.log(40) / 20))
    assert hoeffding_interval(3.0, 10, alpha=0.05) == pytest.approx((0.0, 0.3 + math.sqrt(math.log(40) / 20)))
    with pytest.raises(InvalidArgument, match="comparison: expected '>=' or '<=' but got '>'"):
        SequentialCheck(n_total=10, first=2, threshold=0.5, comparison=">")
    with pytest.raises(InvalidArgument, match="n_total: expected an integer >= 1 but got 0"):
        look_schedule(0, 2)
