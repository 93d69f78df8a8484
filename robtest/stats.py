"""Confidence intervals behind every verdict (pure functions over counts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _st

from robtest.errors import InvalidArgument

__all__ = ["bootstrap_ci", "clopper_pearson", "proportion_ci", "exceeds_noise", "corrected_counts", "NOISE_RATE",
           "NOISE_ALPHA"]

#: The share of the points an attack left robust that a stronger probe may fool on a sound evaluation: no attack
#: short of an exact solver is the worst case, and a few more points always fall to more steps or another search.
NOISE_RATE = 0.05
#: The level of the one-sided binomial test that a count exceeds that noise.
NOISE_ALPHA = 0.05


def proportion_ci(k: int, n: int, *, confidence: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Two-sided interval for a binomial proportion k/n (Wilson by default, or "exact" Clopper–Pearson).

    >>> lo, hi = proportion_ci(412, 1000)
    >>> round(lo, 3), round(hi, 3)
    (0.382, 0.443)
    >>> proportion_ci(0, 0)
    (0.0, 1.0)
    """
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence: expected a number in (0, 1) but got {confidence!r}")
    if n < 0 or not 0 <= k <= n:
        raise InvalidArgument(f"proportion_ci: expected 0 <= k <= n but got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    ci = _st.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method=method)
    return float(ci.low), float(ci.high)


def clopper_pearson(k: ArrayLike, n: ArrayLike, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) two-sided interval at level ``1 - alpha``, vectorised over arrays of counts.

    >>> lo, hi = clopper_pearson(412, 1000)
    >>> round(float(lo), 3), round(float(hi), 3)
    (0.381, 0.443)
    >>> [float(v) for v in clopper_pearson(0, 10, alpha=0.1)]
    [0.0, 0.2588655...]
    """
    if not 0 < alpha < 1:
        raise InvalidArgument(f"alpha: expected a number in (0, 1) but got {alpha!r}")
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if np.any(n < 0) or np.any(k < 0) or np.any(k > n):
        raise InvalidArgument(f"clopper_pearson: expected 0 <= k <= n but got k={k}, n={n}")
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, _st.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, _st.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=1.0)


def bootstrap_ci(values: ArrayLike, statistic: Callable[..., Any] = np.mean, *, confidence: float = 0.95,
                 seed: int = 0, n_resamples: int = 999) -> tuple[float, float]:
    """Seeded percentile-bootstrap interval of ``statistic`` over the rows of ``values`` (resampled with replacement).

    ``statistic(sample, axis=-1)`` must accept an ``axis`` when ``values`` is one-dimensional (numpy reductions
    do); for two-dimensional ``values`` (one row per sample) it receives the resampled rows and is called once
    per resample. A sample of one point, or of identical values, gives a zero-width interval.

    >>> lo, hi = bootstrap_ci([0.1, 0.4, 0.3, 0.2, 0.5, 0.35, 0.25, 0.45], seed=0)
    >>> 0.2 < lo < 0.319 < hi <= 0.45  # the mean is 0.319
    True
    """
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence: expected a number in (0, 1) but got {confidence!r}")
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or v.shape[0] == 0:
        raise InvalidArgument(f"values: expected a non-empty sample but got shape {v.shape}")
    if v.ndim == 1:
        if v.shape[0] == 1 or np.all(v == v[0]):
            s = float(statistic(v))
            return s, s
        res = _st.bootstrap((v,), statistic, confidence_level=confidence, n_resamples=n_resamples,
                            method="percentile", vectorized=True, random_state=np.random.default_rng(seed))
        return float(res.confidence_interval.low), float(res.confidence_interval.high)
    rng = np.random.default_rng(seed)
    n = v.shape[0]
    stats = np.array([statistic(v[rng.integers(0, n, n)]) for _ in range(n_resamples)], dtype=float)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    a = (1 - confidence) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def exceeds_noise(k: int, m: int, *, rate: float = NOISE_RATE, alpha: float = NOISE_ALPHA) -> bool:
    """Whether ``k`` counterexamples among ``m`` probed points are more than noise: the one-sided binomial test of
    "the probe fools at most ``rate`` of such points" rejects at level ``alpha`` (P(X >= k | m, rate) < alpha).

    >>> exceeds_noise(1, 116), exceeds_noise(2, 14), exceeds_noise(4, 14), exceeds_noise(6, 32)
    (False, False, True, True)
    """
    if m <= 0 or k <= 0:
        return False
    return float(_st.binom.sf(int(k) - 1, int(m), rate)) < alpha


def corrected_counts(robust: int, probed: int, found: int, *, extrapolate: bool, confidence: float = 0.95
                     ) -> tuple[float, int, int]:
    """The robust count once counterexamples found by a probe are folded in: ``(estimate, low, high)``.

    ``robust`` points were left robust by the attack; ``probed`` of them were attacked again and ``found`` of
    those fell. The found ones are real counterexamples, so at most ``robust - found`` points are robust. With
    ``extrapolate`` (the probe found more than noise) the ``robust - probed`` unprobed points are taken to fall at
    the probed rate, within its Clopper–Pearson interval at ``confidence``: the count's bounds then combine that
    interval with the count's own (each at ``confidence``; jointly at least ``1 - 2(1 - confidence)``).

    >>> corrected_counts(100, 32, 0, extrapolate=False)
    (100.0, 100, 100)
    >>> corrected_counts(100, 32, 2, extrapolate=False)
    (98.0, 98, 98)
    >>> est, low, high = corrected_counts(100, 32, 8, extrapolate=True)
    >>> round(est, 1), low, high
    (75.0, 62, 85)
    """
    if not 0 <= found <= probed <= robust:
        raise InvalidArgument(f"corrected_counts: expected 0 <= found <= probed <= robust but got found={found}, "
                              f"probed={probed}, robust={robust}")
    left = robust - found
    if not extrapolate or probed == 0 or found == 0:
        return float(left), left, left
    unprobed = robust - probed
    lo, hi = clopper_pearson(found, probed, alpha=1 - confidence)
    est = left - found / probed * unprobed
    low = int(np.floor(left - float(hi) * unprobed + 1e-9))
    high = int(np.ceil(left - float(lo) * unprobed - 1e-9))
    return float(est), low, high
