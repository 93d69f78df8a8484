"""Intervals hold their nominal level: exactly (binomial sums) and by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from robtest.errors import InvalidArgument
from robtest.stats import bootstrap_ci, clopper_pearson, proportion_ci


def exact_coverage(n: int, p: float, method: str, confidence: float = 0.95) -> float:
    k = np.arange(n + 1)
    ci = [proportion_ci(int(i), n, confidence=confidence, method=method) for i in k]
    hit = np.array([lo <= p <= hi for lo, hi in ci])
    return float(st.binom.pmf(k, n, p)[hit].sum())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8, 0.95], ids=lambda p: f"p={p}")
def test_wilson_coverage_is_near_nominal(p):
    # Wilson is approximate: its coverage oscillates around 95%, within a couple of points for n = 100.
    assert 0.92 <= exact_coverage(100, p, "wilson") <= 0.99


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9], ids=lambda p: f"p={p}")
def test_clopper_pearson_never_undercovers(p):
    assert exact_coverage(60, p, "exact") >= 0.95


def test_wilson_coverage_by_simulation():
    rng = np.random.default_rng(1)
    n, p, reps = 200, 0.3, 2000
    k = rng.binomial(n, p, size=reps)
    table = {int(i): proportion_ci(int(i), n) for i in np.unique(k)}
    cover = np.mean([table[int(i)][0] <= p <= table[int(i)][1] for i in k])
    # 2000 draws: the Monte Carlo standard error of a 95% coverage is 0.5%.
    assert abs(cover - 0.95) < 0.02


def test_vectorised_clopper_pearson_matches_scipy():
    k, n = np.array([0, 3, 50, 100]), np.array([100, 100, 100, 100])
    lo, hi = clopper_pearson(k, n, alpha=0.05)
    for i in range(4):
        ref = st.binomtest(int(k[i]), int(n[i])).proportion_ci(0.95, method="exact")
        assert lo[i] == pytest.approx(ref.low, abs=1e-9) and hi[i] == pytest.approx(ref.high, abs=1e-9)


def test_bootstrap_covers_the_mean_by_simulation():
    rng = np.random.default_rng(2)
    reps, hits = 200, 0
    for r in range(reps):
        sample = rng.exponential(1.0, size=60)
        lo, hi = bootstrap_ci(sample, seed=r, n_resamples=400)
        hits += lo <= 1.0 <= hi
    # the percentile bootstrap undercovers a little on skewed data at n = 60; 200 reps: s.e. 1.5%
    assert 0.87 <= hits / reps <= 0.99


def test_bootstrap_over_rows_matches_scipys_percentile_interval():
    """Two-dimensional values (one row per sample, as the power-law fit resamples them) against scipy's own
    percentile bootstrap of the same statistic: the same 95% interval up to Monte Carlo noise. With 4000
    resamples an endpoint's noise is about 0.05 standard errors; a 90% interval would sit 0.3 inside."""
    rng = np.random.default_rng(11)
    v = rng.normal(size=(50, 2))
    lo, hi = bootstrap_ci(v, lambda rows: rows[:, 0].mean(), n_resamples=4000, seed=0)
    ref = st.bootstrap((v[:, 0],), np.mean, n_resamples=4000, method="percentile",
                       random_state=np.random.default_rng(1)).confidence_interval
    se = v[:, 0].std(ddof=1) / np.sqrt(len(v))
    assert abs(lo - ref.low) < 0.15 * se and abs(hi - ref.high) < 0.15 * se


def test_bootstrap_over_rows_covers_by_simulation():
    rng = np.random.default_rng(3)
    reps, hits = 300, 0
    for r in range(reps):
        rows = rng.normal(size=(40, 2))  # the difference of the column means is 0
        lo, hi = bootstrap_ci(rows, lambda s: s[:, 0].mean() - s[:, 1].mean(), n_resamples=200, seed=r)
        hits += lo <= 0.0 <= hi
    # 300 reps: s.e. 1.3% around 95%; the percentile bootstrap undercovers a little at n = 40
    assert 0.91 <= hits / reps <= 0.99


def test_bootstrap_is_seeded_and_handles_constant_samples():
    v = np.linspace(0, 1, 30)
    assert bootstrap_ci(v, seed=3) == bootstrap_ci(v, seed=3)
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: proportion_ci(5, 3), "expected 0 <= k <= n but got k=5, n=3"),
        (lambda: proportion_ci(1, 3, confidence=1.5), "expected a number in \\(0, 1\\) but got 1.5"),
        (lambda: clopper_pearson(1, 3, alpha=0), "alpha: expected a number in \\(0, 1\\)"),
        (lambda: bootstrap_ci([]), "values: expected a non-empty sample"),
    ],
    ids=["k>n", "confidence", "alpha", "empty"],
)
def test_bad_arguments(call, match):
    with pytest.raises(InvalidArgument, match=match):
        call()
