"""Indicators of a broken evaluation, carried by every measurement into its verdict.

An attack that fails (masked or shattered gradients, a randomised model, probabilities instead of logits, an
optimisation stopped too early) reports a robust accuracy that is too high. robtest checks for the known ways
this happens while it evaluates; each check that fires adds a :class:`Diagnostic` (the indicator, what it
means, what to try, and the evidence) to the measurement. A verdict whose measurement holds a diagnostic that
was not explicitly allowed is **suspect**: it does not pass, whatever the warning filters say. Warnings
(:class:`~robtest.errors.EvaluationWarning`) are only an extra channel.

Collection is scoped: :func:`collecting` opens a collector for the current evaluation (nested evaluations
hand theirs to the enclosing one) and :func:`report` adds to it. This module imports only the standard
library, so the pytest plugin can validate ``allow=`` without torch.

>>> with collecting() as found:
...     report("randomized", "two passes differ", warn=False, disagreeing=3)
>>> [(d.indicator, d.evidence["disagreeing"]) for d in found.items()]
[('randomized', 3)]
>>> allowed(found.items(), ("randomized",))[0].allowed
True
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from robtest.errors import EvaluationWarning, InvalidArgument

__all__ = ["INDICATORS", "COUNTING", "Diagnostic", "Collector", "collecting", "isolated", "report", "allowed",
           "check_allow", "kind"]

#: Every indicator robtest checks, with what it means and what to do (the README lists the same).
INDICATORS: dict[str, str] = {
    "randomized": "two forward passes of the same input gave different outputs: the model is randomised, so one "
                  "lucky draw can make a point look robust. robtest attacked with EOT (gradients averaged over "
                  "draws) and counted a point robust by its expected prediction; allow=('randomized',) accepts "
                  "that evaluation, or make the model deterministic in eval mode",
    "no_gradient": "the output does not depend differentiably on the input (torch.no_grad, .detach(), a numpy "
                   "round-trip in forward): gradient attacks cannot work; make forward differentiable, wrap the "
                   "non-differentiable step in robtest.BPDA, or use a gradient-free attack (attack='square')",
    "zero_gradients": "the input gradient was exactly zero for some points (saturated softmax, quantising or "
                      "rounding layers): gradient attacks cannot move them; wrap non-differentiable preprocessing "
                      "in robtest.BPDA, use loss='margin' / the DLR loss, or a gradient-free attack",
    "tiny_gradients": "the input gradient was too small to change the loss across the ε-ball (to first order by less "
                      "than 1e-5 of the loss): gradient masking by scaling or saturation; try loss='margin', "
                      "the DLR loss (attack='auto'), or a gradient-free attack",
    "nonfinite_gradients": "the input gradient held NaN or infinity: the attack steps are meaningless; check the "
                           "model for divisions, logs or sqrt at 0, or wrap the step in robtest.BPDA",
    "probability_outputs": "the model returns probabilities (rows in [0, 1] summing to 1), not logits: robtest "
                           "attacked log-probabilities instead; declare it with "
                           "robtest.AsLogits(model, outputs='probabilities'), or remove the final softmax",
    "sigmoid_outputs": "the model returns per-class values in [0, 1] that do not sum to 1 (a sigmoid / one-vs-rest "
                       "head): softmax cross-entropy over them is flat; robtest attacked their logits "
                       "log(p/(1-p)) instead; declare it with robtest.AsLogits(model, outputs='sigmoid')",
    "gradient_free_wins": "a gradient-free attack (Square) fooled points the gradient attacks left robust: the "
                          "gradient attack is too weak here (too few steps) or the gradients mislead (masking, "
                          "shattering); use attack='auto' (which counts those points as fooled), more steps, BPDA "
                          "for non-differentiable steps or EOT for randomness",
    "incomplete_optimization": "a stronger run of the attack (more steps and restarts) fooled points the evaluated "
                               "attack left robust, by more than noise: the reported accuracy is too high; raise "
                               "steps / restarts or use attack='auto'",
    "eps_not_monotone": "points the attack left robust at ε were fooled at a smaller ε (whose ball lies inside): "
                        "the attack does not find what exists; shattered or masked gradients, or too few steps",
    "unbounded_not_chance": "an attack with ε covering the whole box could not drive accuracy to chance: gradients "
                            "do not lead anywhere (masking, shattering, a non-differentiable step); use BPDA, EOT "
                            "or a gradient-free attack",
    "gradients_in_forward": "the model computes gradients inside forward (a dynamic or self-attacking defence): "
                            "attacks see a different function than the one evaluated; attack the defence adaptively "
                            "(BPDA on the inner step)",
    "large_eps": "the L∞ ε is half the box width or more: every image can be turned grey; ε is in pixel units of "
                 "the box, so divide by the std if you meant normalised units",
    "grad_mode_forward": "forward computes another function with gradients enabled (what the attack "
                         "differentiates) than without (what predicts): a transformation applied only in one mode "
                         "(a squeezer or quantiser skipped under autograd) hides the predicting function from the "
                         "attack; make forward the same in both modes, and wrap the non-differentiable step in "
                         "robtest.BPDA",
    "stateful": "the model answers differently once it has seen queries: a copy taken before the first query "
                "classifies the final examples otherwise than the queried model (a cache of past inputs, a "
                "detector that remembers, state updated in forward); evaluate a model whose forward has no memory, "
                "or attack the stateful defence adaptively",
}

#: The indicators whose evidence is counterexamples that a stronger probe found among the points the attack left
#: robust. Each of them is folded into the measurement (the *corrected* accuracy); such an indicator fires only when
#: the count is more than noise, and it makes a verdict suspect only when the corrected interval straddles the
#: threshold. Every other indicator says that no number of the evaluation can be trusted: it makes the measurement
#: suspect whatever the threshold.
COUNTING = frozenset({"eps_not_monotone", "incomplete_optimization", "gradient_free_wins"})


def kind(indicator: str) -> str:
    """``"count"`` for an indicator whose evidence are counterexamples (:data:`COUNTING`), else ``"trust"``.

    >>> kind("gradient_free_wins"), kind("zero_gradients")
    ('count', 'trust')
    """
    return "count" if indicator in COUNTING else "trust"


@dataclass(frozen=True)
class Diagnostic:
    """One indicator that fired during an evaluation: what, why, the evidence, and whether the test allowed it."""

    indicator: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    allowed: bool = False

    def __str__(self) -> str:
        ev = evidence_text(self.evidence)
        tag = " (allowed)" if self.allowed else ""
        return f"{self.indicator}{tag}: {self.message}" + (f" [{ev}]" if ev else "")

    @property
    def kind(self) -> str:
        return kind(self.indicator)

    def to_record(self) -> dict[str, Any]:
        safe = {k: v for k, v in self.evidence.items() if isinstance(v, (int, float, str, bool, type(None)))}
        return {"indicator": self.indicator, "kind": self.kind, "message": self.message, "evidence": safe,
                "allowed": self.allowed}


class Collector:
    """The diagnostics of one evaluation: one entry per indicator; a repeat adds to its evidence counts."""

    def __init__(self, *, muted: bool = False) -> None:
        self._items: dict[str, Diagnostic] = {}
        self.muted = muted  # a sandbox: collects without warning, and hands nothing to an enclosing collector

    def add(self, d: Diagnostic) -> None:
        old = self._items.get(d.indicator)
        if old is None:
            self._items[d.indicator] = d
            return
        merged = dict(old.evidence)
        for k, v in d.evidence.items():
            if isinstance(v, int) and not isinstance(v, bool) and isinstance(merged.get(k), int):
                merged[k] += v  # counts add up over batches and attack phases
            else:
                merged.setdefault(k, v)
        self._items[d.indicator] = replace(old, evidence=merged)

    def extend(self, items: Iterable[Diagnostic]) -> None:
        for d in items:
            self.add(d)

    def items(self) -> tuple[Diagnostic, ...]:
        return tuple(self._items.values())

    def discard(self, indicator: str) -> None:
        """Forget ``indicator`` (a counting indicator whose summed evidence turned out to be noise)."""
        self._items.pop(indicator, None)

    def __bool__(self) -> bool:
        return bool(self._items)


_CURRENT: contextvars.ContextVar[Collector | None] = contextvars.ContextVar("robtest_diagnostics", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[Collector]:
    """Collect the diagnostics reported inside the block; an enclosing collector receives them too."""
    outer = _CURRENT.get()
    mine = Collector()
    token = _CURRENT.set(mine)
    try:
        yield mine
    finally:
        _CURRENT.reset(token)
        if outer is not None and not outer.muted:
            outer.extend(mine.items())


@contextlib.contextmanager
def isolated() -> Iterator[Collector]:
    """Run a check's own attacks without their diagnostics reaching the evaluation (or any warning): the check
    reports what it concludes itself."""
    token = _CURRENT.set(Collector(muted=True))
    try:
        yield _CURRENT.get()  # type: ignore[misc]
    finally:
        _CURRENT.reset(token)


def active() -> bool:
    """Whether an evaluation is collecting diagnostics (checks that cost time may skip otherwise)."""
    return _CURRENT.get() is not None


def report(indicator: str, detail: str = "", *, warn: bool = True, stacklevel: int = 3, **evidence: Any) -> None:
    """Record that ``indicator`` fired, with ``evidence``; also warn (an extra channel, never the only one)."""
    if indicator not in INDICATORS:
        raise ValueError(f"unknown indicator {indicator!r}")  # a robtest bug, not a user error
    message = INDICATORS[indicator] if not detail else f"{detail}: {INDICATORS[indicator]}"
    c = _CURRENT.get()
    if c is not None:
        c.add(Diagnostic(indicator, message, dict(evidence)))
        if c.muted:
            return
    if warn:
        warnings.warn(f"{indicator}: {message}", EvaluationWarning, stacklevel=stacklevel)


def evidence_text(evidence: dict[str, Any]) -> str:
    """``k=v, ...``: how evidence reads in messages and the summary."""
    return ", ".join(f"{k}={v}" for k, v in evidence.items())


def blocking_lines(records: Iterable[dict[str, Any]], where: str, *, counting: bool = False) -> list[str]:
    """The lines of a suspect evaluation's failure message, from diagnostics as records (``to_record``): one per
    indicator not allowed, then how to accept them (``where``: "this property", "the call"). Counting indicators
    block only where their corrected interval straddles a threshold: ``counting`` says whether they do here."""
    bad = [d for d in records if not d["allowed"] and (counting or kind(d["indicator"]) == "trust")]
    lines = []
    for d in bad:
        ev = evidence_text(d["evidence"])
        lines.append(f"  - {d['indicator']}: {d['message']}" + (f" [{ev}]" if ev else ""))
    names = ", ".join(repr(d["indicator"]) for d in bad)
    lines.append(f"  (to accept these after checking them, pass allow=({names},) to {where})")
    return lines


def check_allow(allow: object, where: str = "allow") -> tuple[str, ...]:
    """``allow`` as a tuple of known indicator names (a string counts as one name)."""
    if allow is None:
        return ()
    names = (allow,) if isinstance(allow, str) else allow
    try:
        names = tuple(names)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgument(f"{where}: expected indicator names, e.g. allow=('randomized',), but got {allow!r}"
                              ) from None
    unknown = [n for n in names if n not in INDICATORS]
    if unknown:
        raise InvalidArgument(f"{where}: expected indicator names among {', '.join(INDICATORS)} but got "
                              f"{', '.join(map(repr, unknown))}")
    return names  # type: ignore[return-value]


def allowed(items: Iterable[Diagnostic], allow: Iterable[str]) -> tuple[Diagnostic, ...]:
    """``items`` with those named in ``allow`` marked allowed (shown, but no longer blocking a pass)."""
    names = set(allow)
    return tuple(replace(d, allowed=True) if d.indicator in names else d for d in items)
