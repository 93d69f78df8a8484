"""Verdicts: a measurement read against a threshold by a verdict rule, and what a failure says.

This module imports no torch: the plugin names the rules (:data:`RULES`) when it parses ``--robust-rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robtest import diagnostics
from robtest.errors import InvalidArgument
from robtest.measurement import Measurement

__all__ = ["RULES", "Verdict", "check_rule", "decide", "straddles", "suspect_message"]

#: The verdict rules: read the estimate (``point``), the whole interval (``confident``) or any of it (``plausible``).
RULES = ("point", "confident", "plausible")


def check_rule(rule: object) -> str:
    """One of :data:`RULES`."""
    if rule not in RULES:
        raise InvalidArgument(f"rule: expected one of {RULES} but got {rule!r}")
    return str(rule)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one property check: the measurement, the threshold, whether the threshold was met, and
    whether the evaluation itself can be trusted.

    ``status`` is ``"pass"``, ``"FAIL"`` (the threshold was not met) or ``"suspect"`` (an indicator of a broken
    evaluation fired and was not allowed: see :mod:`robtest.diagnostics`). Only ``"pass"`` passes.
    """

    property: str
    measurement: Measurement
    threshold: float | tuple[float, float]
    comparison: str  # ">=" for floors, "<=" for ceilings, "in" for a range (lo, hi)
    rule: str
    met: bool
    #: False when a budget (``max_seconds``, ``max_samples``) ran out before the interval cleared the threshold:
    #: the verdict is "inconclusive", which never passes.
    settled: bool = True
    budget: str = ""  # which budget ran out, e.g. "max_seconds=30"
    #: A bracketed verdict's sentence (a proof and an attack, :func:`robtest.properties.certified.bracket_status`):
    #: its status comes from them, and the attack's indicators, shown, cannot block it.
    bracket: str = ""

    @property
    def judged(self) -> Measurement:
        """What the verdict reads: the measurement with the indicator checks' counterexamples folded in."""
        return self.measurement.corrected

    @property
    def straddles(self) -> bool:
        """Whether the judged interval reaches both sides of the threshold (the evidence could change the verdict)."""
        return straddles(self.judged, self.threshold, self.comparison)

    @property
    def suspect(self) -> bool:
        """An indicator that no number can be trusted fired, or a counting indicator fired (a stronger probe found
        more counterexamples than noise) and the corrected interval straddles the threshold."""
        if self.bracket:  # a proof and real examples: no indicator of attack failure can move either
            return False
        return self.measurement.suspect or bool(self.measurement.counting and self.straddles)

    @property
    def passed(self) -> bool:
        return self.met and not self.suspect and self.settled

    @property
    def status(self) -> str:
        if self.suspect:
            return "suspect"
        if not self.settled:
            return "inconclusive"
        return "pass" if self.met else "FAIL"

    def threshold_text(self) -> str:
        if self.comparison == "in":
            lo, hi = self.threshold  # type: ignore[misc]
            return f"in [{lo:g}, {hi:g}]"
        return f"{self.comparison} {self.threshold:g}"

    def _threshold_message(self) -> str:
        m = self.judged
        if self.comparison == "in":
            lo, hi = self.threshold  # type: ignore[misc]
            if self.met:
                return f"{m} lies in the range [{lo:g}, {hi:g}]"
            how = {"point": "", "confident": " (rule 'confident': the whole interval must lie inside it)",
                   "plausible": " (rule 'plausible': no part of the interval reaches it)"}[self.rule]
            return f"{m}, is outside the range [{lo:g}, {hi:g}]{how}"
        word = {">=": "floor", "<=": "ceiling"}[self.comparison]
        if self.met:
            return f"{m} meets the {word} {self.threshold:g}"
        side = "below" if self.comparison == ">=" else "above"
        how = {"point": "", "confident": " (rule 'confident': the whole interval must clear it)",
               "plausible": " (rule 'plausible': no part of the interval reaches it)"}[self.rule]
        return f"{m}, is {side} the {word} {self.threshold:g}{how}"

    def message(self) -> str:
        if self.bracket:
            fired = [d.indicator for d in self.measurement.diagnostics if not d.allowed]
            return self.bracket + (f" (the attack's indicators fired: {', '.join(fired)}; they cannot move a proof "
                                   "or a real example)" if fired else "")
        if not self.settled and not self.suspect:
            m = self.measurement
            planned = m.details.get("samples_planned")
            of = f" of {planned}" if planned else ""
            return (f"inconclusive: the budget {self.budget} ran out after {m.n}{of} samples, before the verdict "
                    f"settled: {m}, the interval straddles the {self.threshold_text()} threshold; raise the "
                    "budget (or the number of samples) to decide")
        text = self._threshold_message()
        fix = self.measurement.corrected_text()
        if fix:  # the verdict read the corrected numbers; the attack's own are said too
            m = self.measurement
            text += (f" (the number is {fix}; the attack alone measured {m.value:.3f} "
                     f"[{m.low:.3f}–{m.high:.3f}])")
        limits = self.threshold if self.comparison == "in" else (self.threshold,)
        v = self.judged.value
        if any(f"{v:.3f}" == f"{lim:.3f}" and v != lim for lim in limits):  # type: ignore[union-attr]
            text += f" (the value is {v:.6g})"  # rounding would hide which side of the threshold it lies
        if self.suspect:
            text = suspect_message(self.property, self.measurement, text, counting=self.straddles)
        return text

    def to_record(self) -> dict[str, Any]:
        limit = list(self.threshold) if self.comparison == "in" else self.threshold  # type: ignore[arg-type]
        return {"property": self.property, "measurement": self.measurement.to_record(), "threshold": limit,
                "comparison": self.comparison, "threshold_text": self.threshold_text(), "rule": self.rule,
                "verdict": self.status, **({"budget": self.budget} if self.budget else {}),
                **({"bracket": self.bracket} if self.bracket else {})}


def suspect_message(name: str, m: Measurement, text: str, *, counting: bool = False) -> str:
    """The failure message of a suspect evaluation: the number, then each indicator and how to act. ``counting``:
    the counting indicators block too (their corrected interval straddles the threshold)."""
    why = ("the evaluation tripped indicators of attack failure, so the number cannot be trusted:" if m.suspect else
           "a stronger probe found more counterexamples than noise, and with them folded in the interval straddles "
           "the threshold: the verdict could go either way:")
    lines = [f"SUSPECT evaluation of {name}: {text}", why]
    lines += diagnostics.blocking_lines([d.to_record() for d in m.diagnostics], "this property", counting=counting)
    return "\n".join(lines)


def decide(m: Measurement, threshold: float | tuple[float, float], comparison: str, rule: str) -> bool:
    """Apply a verdict rule: ``point`` (the estimate), ``confident`` (the whole interval), ``plausible`` (any of it).

    ``comparison`` is ">=" (a floor), "<=" (a ceiling) or "in" (``threshold`` is a range ``(lo, hi)``).

    >>> m = Measurement("exponent", 1.2, 1.05, 1.4, n=100)
    >>> [decide(m, (0.9, 1.3), "in", r) for r in RULES]
    [True, False, True]
    """
    check_rule(rule)
    if comparison == "in":
        lo, hi = threshold  # type: ignore[misc]
        if rule == "point":
            return lo <= m.value <= hi
        if rule == "confident":
            return lo <= m.low and m.high <= hi
        return m.high >= lo and m.low <= hi
    if comparison == ">=":
        v = {"point": m.value, "confident": m.low, "plausible": m.high}[rule]
        return v >= threshold
    v = {"point": m.value, "confident": m.high, "plausible": m.low}[rule]
    return v <= threshold


def straddles(m: Measurement, threshold: float | tuple[float, float], comparison: str) -> bool:
    """Whether the interval of ``m`` reaches both sides of the threshold: more evidence could change the verdict.

    >>> straddles(Measurement("accuracy", 0.9, 0.85, 0.95, n=200), 0.9, ">="), straddles(
    ...     Measurement("accuracy", 0.9, 0.85, 0.95, n=200), 0.8, ">=")
    (True, False)
    """
    return decide(m, threshold, comparison, "confident") != decide(m, threshold, comparison, "plausible")
