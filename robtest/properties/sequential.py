"""Sequential verdicts: evaluate in batches and stop once the verdict can no longer change.

Looking at the data after every batch and stopping when the interval clears the threshold would inflate the
error rate if each look used the nominal interval. Here the looks are planned in advance (sample sizes
``64·2^k`` and the end, fixed before any data is seen, and independent of the batch size, the number of ranks
and any other performance setting: the evaluation cuts its batches at the looks) and the error rate
``α = 1 − confidence`` is spent over them: half at the final look, the other half split equally over the
interim looks (Bonferroni). By the union bound the intervals hold *simultaneously* at all looks with
probability at least ``1 − α``, so the interval reported at whatever look the evaluation stopped is an honest
``confidence``-level interval and the verdict read from it errs with probability at most ``α``.

The evaluation stops at a look when the interval lies wholly on one side of the threshold: then the point,
``confident`` and ``plausible`` rules agree and more samples could not change the verdict at this confidence.

Two kinds of quantity: ``"proportion"`` (0/1 outcomes: exact Clopper–Pearson intervals) and ``"mean"`` (values
in [0, 1], such as softmax confidences: Hoeffding intervals, valid for any distribution on [0, 1]).

Early stopping has one protocol, the same for every evaluation: a ``stop(total, seen) -> bool`` callable asked
with the running total (a count of robust samples, or a sum of values) at each of its ``planned`` sample counts
(the evaluation cuts its batches there; without ``planned``, after every batch); True ends the evaluation.
:class:`SequentialCheck` is one, and a :class:`Budget` (seconds and/or samples) wraps one into another
(:meth:`Budget.stopper`). A property that can stop early takes ``sequential`` (stop once the verdict against its
threshold is settled) and ``budget`` and builds its stop from them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robtest.errors import InvalidArgument
from robtest.stats import clopper_pearson
from robtest.validation import integer, number

__all__ = ["FIRST_LOOK", "KINDS", "Budget", "SequentialCheck", "look_schedule", "spending", "sequential_mean",
           "hoeffding_interval"]

KINDS = ("proportion", "mean")
#: Samples at the first planned look; later looks double it. A sample count, never a batch size.
FIRST_LOOK = 64


def look_schedule(n_total: int, first: int = FIRST_LOOK) -> tuple[int, ...]:
    """The planned looks: sample sizes ``first·2^k`` below ``n_total``, then ``n_total``.

    >>> look_schedule(540)
    (64, 128, 256, 512, 540)
    >>> look_schedule(50)
    (50,)
    """
    integer("n_total", n_total)
    integer("first", first, hint=" (samples at the first look)")
    looks, n = [], first
    while n < n_total:
        looks.append(n)
        n *= 2
    return (*looks, n_total)


def spending(looks: int, alpha: float) -> tuple[float, ...]:
    """Error rate per look: ``α/2`` at the last, ``α/(2(K−1))`` at each of the ``K−1`` interim looks.

    >>> spending(5, 0.05)
    (0.00625, 0.00625, 0.00625, 0.00625, 0.025)
    >>> spending(1, 0.05)
    (0.05,)
    """
    if not 0 < alpha < 1:
        raise InvalidArgument(f"alpha: expected a number in (0, 1) but got {alpha!r}")
    if looks == 1:
        return (alpha,)
    return (*([alpha / (2 * (looks - 1))] * (looks - 1)), alpha / 2)


def hoeffding_interval(total: float, n: int, *, alpha: float) -> tuple[float, float]:
    """Two-sided Hoeffding interval for the mean of ``n`` values in [0, 1] summing to ``total``.

    >>> [round(v, 3) for v in hoeffding_interval(50.0, 100, alpha=0.05)]
    [0.364, 0.636]
    """
    if n <= 0:
        return 0.0, 1.0
    m = total / n
    h = math.sqrt(math.log(2 / alpha) / (2 * n))
    return max(0.0, m - h), min(1.0, m + h)


def _interval(kind: str, total: float, n: int, alpha: float) -> tuple[float, float]:
    if kind == "proportion":
        lo, hi = clopper_pearson(int(round(total)), n, alpha=alpha)
        return float(lo), float(hi)
    return hoeffding_interval(total, n, alpha=alpha)


class SequentialCheck:
    """The ``stop(total, seen)`` callback of a sequential verdict, and the honest interval where it stopped.

    ``total`` is the running count (``kind="proportion"``) or sum of values in [0, 1] (``kind="mean"``) over
    ``seen`` samples. Call it when ``seen`` reaches each of the ``planned`` looks (an evaluation cuts its
    batches there); calls in between are ignored, and a look passed over is taken at the next call.

    >>> check = SequentialCheck(n_total=1000, first=100, threshold=0.5, comparison=">=")
    >>> check(95, 100)        # 95 of the first 100 correct: clearly above a floor of 0.5
    True
    >>> low, high = check.interval(95, 100)
    >>> 0.5 < low < 0.95 < high, check.looks_taken, check.planned
    (True, 1, (100, 200, 400, 800, 1000))
    """

    def __init__(self, *, n_total: int, threshold: float, comparison: str, confidence: float = 0.95,
                 kind: str = "proportion", first: int = FIRST_LOOK) -> None:
        if comparison not in (">=", "<="):
            raise InvalidArgument(f"comparison: expected '>=' or '<=' but got {comparison!r}")
        if kind not in KINDS:
            raise InvalidArgument(f"kind: expected one of {KINDS} but got {kind!r}")
        if not 0 < confidence < 1:
            raise InvalidArgument(f"confidence: expected a number in (0, 1) but got {confidence!r}")
        self.planned = look_schedule(n_total, first)
        self.alphas = spending(len(self.planned), 1 - confidence)
        self.threshold, self.comparison, self.kind = float(threshold), comparison, kind
        self.looks_taken = 0
        self._last: tuple[int, float, float] | None = None  # (seen, low, high) at the latest look

    def _decided(self, low: float, high: float) -> bool:
        if self.comparison == ">=":
            return low >= self.threshold or high < self.threshold
        return high <= self.threshold or low > self.threshold

    def _look(self, total: float, seen: int) -> tuple[float, float]:
        alpha = self.alphas[min(self.looks_taken, len(self.alphas) - 1)]
        low, high = _interval(self.kind, total, seen, alpha)
        self.looks_taken += 1
        self._last = (seen, low, high)
        return low, high

    def __call__(self, total: float, seen: int) -> bool:
        if self.looks_taken >= len(self.planned) or seen < self.planned[self.looks_taken]:
            return False
        return self._decided(*self._look(total, seen))

    def interval(self, total: float, seen: int) -> tuple[float, float]:
        """The interval to report after the evaluation ended at ``seen`` samples (stopped early or not)."""
        if self._last is not None and self._last[0] == seen:
            return self._last[1], self._last[2]
        # The data ran out between looks: count the end as the next planned look (the union bound still holds).
        return self._look(total, seen)

    def interval_of(self, total: float, seen: int) -> tuple[float, float]:
        """The interval :meth:`interval` gives at the same stop for another ``total`` (a corrected count), at the
        same look's level and without taking a look."""
        taken = self.looks_taken - 1 if self._last is not None and self._last[0] == seen else self.looks_taken
        alpha = self.alphas[min(max(taken, 0), len(self.alphas) - 1)]
        return _interval(self.kind, total, seen, alpha)

    def details(self, seen: int) -> dict[str, Any]:
        return {"sequential": True, "samples_used": seen, "samples_planned": self.planned[-1],
                "looks": self.looks_taken, "stopped_early": seen < self.planned[-1]}


def sequential_mean(values: Sequence[float] | np.ndarray, *, threshold: float, comparison: str,
                    first: int = FIRST_LOOK, confidence: float = 0.95, kind: str = "proportion"
                    ) -> tuple[float, float, float, int]:
    """Run the sequential procedure over a stream of values, looking at ``first·2^k`` values and the end:
    ``(estimate, low, high, samples used)``.

    >>> rng = np.random.default_rng(0)
    >>> est, low, high, used = sequential_mean(rng.random(2000) < 0.9, threshold=0.6, comparison=">=", first=50)
    >>> used < 2000 and low > 0.6
    True
    """
    v = np.asarray(values, dtype=float)
    check = SequentialCheck(n_total=len(v), first=first, threshold=threshold, comparison=comparison,
                            confidence=confidence, kind=kind)
    total, seen = 0.0, 0
    for end in check.planned:
        total += float(v[seen:end].sum())
        seen = end
        if check(total, seen):
            break
    low, high = check.interval(total, seen)
    return total / seen, low, high, seen


@dataclass
class Budget:
    """A property's budget: seconds of evaluation and/or samples. :meth:`stopper` wraps a sequential check (or
    nothing) into the evaluation's ``stop``; :meth:`ran_out` says afterwards whether the budget ended it.

    >>> b = Budget.of(None, 100)
    >>> stop = b.stopper(None)
    >>> stop(0, 64), stop(0, 100), b.ran_out(100, 540), b.ran_out(540, 540)
    (False, True, 'max_samples=100', '')
    """

    seconds: float | None
    samples: int | None
    _timed_out: bool = False

    @classmethod
    def of(cls, seconds: object, samples: object) -> Budget | None:
        """The budget of ``max_seconds`` and ``max_samples`` (checked); None when neither is set."""
        if seconds is None and samples is None:
            return None
        if seconds is not None:
            seconds = number("max_seconds", seconds)
            if seconds <= 0:
                raise InvalidArgument(f"max_seconds: expected a number of seconds > 0 but got {seconds!r}")
        if samples is not None:
            integer("max_samples", samples)
        return cls(seconds, samples)  # type: ignore[arg-type]

    def stopper(self, check: Any) -> Callable[[float, int], bool]:
        """``stop(total, seen)`` for the evaluation: the check's verdict, or the budget running out. With a
        sequential check the evaluation asks only at its planned looks (sample counts independent of the batch
        size), so a time budget is read there: it can run over by up to the time of the last segment."""
        deadline = None if self.seconds is None else time.monotonic() + self.seconds

        def stop(total: float, seen: int) -> bool:
            if check is not None and check(total, seen):
                return True
            if deadline is not None and time.monotonic() > deadline:
                self._timed_out = True
                return True
            return self.samples is not None and seen >= self.samples

        if check is not None:
            stop.planned = check.planned  # type: ignore[attr-defined]
        return stop

    def ran_out(self, seen: int, planned: int) -> str:
        """Which budget stopped the evaluation before ``planned`` samples ("" when none did)."""
        if seen >= planned:
            return ""
        if self._timed_out:
            return f"max_seconds={self.seconds:g}"
        if self.samples is not None and seen >= self.samples:
            return f"max_samples={self.samples}"
        return ""
