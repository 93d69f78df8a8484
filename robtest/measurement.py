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
        """True when an indicator fired that the test did not allow: the number cannot be trusted."""
        return any(not d.allowed for d in self.diagnostics)

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
        bad = [d.indicator for d in self.diagnostics if not d.allowed]
        flag = f" [SUSPECT: {', '.join(bad)}]" if bad else ""
        return f"{self.name} {self.value:.3f} ({self.interval_text()}){ctx}{flag}"

    __repr__ = __str__

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict (what xdist workers send to the controller)."""
        d = asdict(self)
        d["details"] = {k: v for k, v in self.details.items() if _json_safe(v)}
        d["diagnostics"] = [x.to_record() for x in self.diagnostics]
        d["suspect"] = self.suspect
        return d
