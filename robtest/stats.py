"""Confidence intervals behind every verdict (pure functions over counts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _st

from robtest.errors import InvalidArgument

__all__ = ["bootstrap_ci", "clopper_pearson", "proportion_ci"]


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
