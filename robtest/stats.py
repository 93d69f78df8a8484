"""Confidence intervals behind every verdict (pure functions over counts)."""

from __future__ import annotations

from scipy import stats as _st

from robtest.errors import InvalidArgument

__all__ = ["proportion_ci"]


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
