"""A measured quantity with its interval: compares like a float, reads like a sentence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from robtest.diagnostics import Diagnostic, allowed

__all__ = ["Measurement"]

_SCALARS = (int, float, str, bool, type(None))


def _json_safe(v: object) -> bool:
    """Scalars, and lists and dicts (string or integer keys) of them, nested (per-sample outcomes, the
    report's plot data): what a JSON record can carry."""
    if isinstance(v, (list, tuple)):
        return all(isinstance(x, _SCALARS) or _json_safe(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and not isinstance(k, bool) and _json_safe(x) for k, x in v.items())
    return isinstance(v, _SCALARS)


@dataclass(frozen=True, eq=False)
class Measurement:
    """A point estimate with a confidence interval, the sample size and what was measured.

    Compares with floats through its point estimate, so ``assert robust.accuracy(...) >= 0.7`` works and
    a failing assertion prints the whole sentence.

    >>> m = Measurement("accuracy", 0.412, 0.382, 0.443, n=1000, context="under PGD L∞ ε=0.1, 40 steps")
    >>> m >= 0.6
    False
    >>> print(m)
    accuracy 0.412 (95% CI 0.382–0.443, n=1000) under PGD L∞ ε=0.1, 40 steps
    """

    name: str
    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95
    context: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: The indicators of a broken evaluation that fired (see :mod:`robtest.diagnostics`).
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def suspect(self) -> bool:
        """True when an indicator that says no number can be trusted fired and the test did not allow it. Counting
        indicators (:data:`robtest.diagnostics.COUNTING`) do not make a measurement suspect by themselves: their
        counterexamples are folded into :attr:`corrected`, and a verdict is suspect only when the corrected interval
        straddles its threshold (:meth:`straddles`)."""
        return any(not d.allowed and d.kind == "trust" for d in self.diagnostics)

    @property
    def counting(self) -> tuple[Diagnostic, ...]:
        """The counting indicators that fired and were not allowed: a verdict near its threshold is suspect."""
        return tuple(d for d in self.diagnostics if not d.allowed and d.kind == "count")

    @property
    def corrected(self) -> Measurement:
        """This measurement with the counterexamples the indicator checks found folded in (``details["corrected"]``:
        the estimate and interval, see :func:`robtest.stats.corrected_counts`); itself when there are none.

        >>> m = Measurement("accuracy", 0.5, 0.4, 0.6, n=100, details={"corrected": {"value": 0.45, "low": 0.35,
        ...                 "high": 0.55, "found": 5, "probed": 32}})
        >>> print(m.corrected)
        accuracy 0.450 (95% CI 0.350–0.550, n=100)
        """
        c = self.details.get("corrected")
        if not c or not c.get("found"):
            return self
        rest = {k: v for k, v in self.details.items() if k != "corrected"}
        return replace(self, value=float(c["value"]), low=float(c["low"]), high=float(c["high"]), details=rest)

    def corrected_text(self) -> str:
        """'corrected 0.450 [0.350–0.550] (5 counterexamples found among 32 probed)', or '' without any."""
        c = self.details.get("corrected")
        if not c or not c.get("found"):
            return ""
        how = ", extrapolated to the unprobed points" if c.get("extrapolated") else ""
        return (f"corrected {c['value']:.3f} [{c['low']:.3f}–{c['high']:.3f}] ({c['found']} counterexample"
                f"{'s' if c['found'] != 1 else ''} found among {c['probed']} probed{how})")

    def with_diagnostics(self, items: tuple[Diagnostic, ...], allow: tuple[str, ...] = ()) -> Measurement:
        """This measurement carrying ``items`` as well (those named in ``allow`` marked allowed)."""
        have = {d.indicator for d in self.diagnostics}
        merged = (*self.diagnostics, *(d for d in items if d.indicator not in have))
        return replace(self, diagnostics=allowed(merged, allow))

    def __float__(self) -> float:
        return float(self.value)

    def _v(self, other: object) -> float:
        return float(other)  # type: ignore[arg-type]

    def __lt__(self, other: object) -> bool:
        return self.value < self._v(other)

    def __le__(self, other: object) -> bool:
        return self.value <= self._v(other)

    def __gt__(self, other: object) -> bool:
        return self.value > self._v(other)

    def __ge__(self, other: object) -> bool:
        return self.value >= self._v(other)

    def __eq__(self, other: object) -> bool:
        try:
            return self.value == float(other)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def interval_text(self) -> str:
        return f"{self.confidence:.0%} CI {self.low:.3f}–{self.high:.3f}, n={self.n}"

    def __str__(self) -> str:
        ctx = f" {self.context}" if self.context else ""
        bad = [d.indicator for d in self.diagnostics if not d.allowed and d.kind == "trust"]
        flag = f" [SUSPECT: {', '.join(bad)}]" if bad else ""
        fix = self.corrected_text()
        return f"{self.name} {self.value:.3f} ({self.interval_text()}){ctx}{flag}" + (f"; {fix}" if fix else "")

    __repr__ = __str__

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict (what xdist workers send to the controller)."""
        d = asdict(self)
        d["details"] = {k: v for k, v in self.details.items() if _json_safe(v)}
        d["diagnostics"] = [x.to_record() for x in self.diagnostics]
        d["suspect"] = self.suspect
        return d
