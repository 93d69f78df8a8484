"""The property table: one entry per robustness property, from which the rest of robtest is derived.

An entry says once what the rest reads: the marker's name, the keywords a marker must give and may give (the
plugin checks markers against them), the threshold keyword and which way it points, the function that measures
the property, whether the options of an attack (or fuzzing strategy) from its registry pass through, how the
property stops early, and what the HTML report plots. From it:

- the markers and their checks (:func:`marker_errors`; registered by :mod:`robtest.plugin`);
- the ``robust.<property>()`` methods, their signatures and docstrings made from the function's
  (:mod:`robtest.session`), all running through one generic path;
- the baseline comparison's direction (the comparison) and which records it skips (searches);
- the report's plot of each property's measurement (:mod:`robtest.html_report`).

Adding a property is one entry here, its function and its tests; ``tests/test_property_table.py`` walks the
table (every function importable, every option in its signature, a README section for each).

This module imports only the standard library: the plugin reads it without torch. Functions are named by their
import path and loaded when a property first runs.

>>> PROPERTIES["lipschitz"].accepted[:4]
('max', 'estimate', 'radius', 'steps')
>>> marker_errors("lipschitz", (), {"max": 5.0, "colour": "red"})  # doctest: +NORMALIZE_WHITESPACE
['@lipschitz does not take colour; it accepts: max, estimate, radius, steps, samples, batch_size, seed,
  confidence, rule, allow, tolerance']
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["COMPARISONS", "CONTEXT", "KNOBS", "PROPERTIES", "STOP_KNOBS", "VERDICT_KNOBS", "Property", "marker_errors"]

#: Settings of the run a property call may override for itself.
KNOBS = ("samples", "batch_size", "seed", "confidence")
#: How a call's verdict is read and judged: the rule, the indicators it allows, the baseline's margin.
VERDICT_KNOBS = ("rule", "allow", "tolerance")
#: What a property that stops early also takes: stop once the verdict is settled, and its budgets.
STOP_KNOBS = ("sequential", "max_seconds", "max_samples")
#: Parameters of a property function the session fills in itself (never a property's own option).
CONTEXT = frozenset({"model", "data", "shape", "bounds", "device", *KNOBS, "sequential", "budget", "sample_ids",
                     "precision", "channels_last"})
#: Comparisons: a floor, a ceiling, a range ``(lo, hi)``.
COMPARISONS = (">=", "<=", "in")


@dataclass(frozen=True)
class Property:
    """One robustness property: its marker, threshold, measuring function, options, early stop and plot."""

    name: str
    #: One line: what passes (the marker's help and the method's first line).
    summary: str
    #: ``"module:function"``: what measures it, returning a :class:`~robtest.Measurement`.
    function: str
    #: The keyword holding the threshold.
    threshold: str
    #: ">=" (a floor), "<=" (a ceiling) or "in" (a range ``(lo, hi)``); also the baseline's direction.
    comparison: str
    #: Keywords a marker must give, in the order messages list them (the threshold, unless it has a default).
    required: tuple[str, ...]
    #: The function's own keyword options a marker or method may set, in the order messages list them.
    options: tuple[str, ...] = ()
    #: ``"attack"``: every option of the attack named by the ``attack`` keyword passes through (checked against
    #: the attack registry); ``"strategy"``: the fuzzing strategy's options do. None: no others.
    passes: str | None = None
    #: Where it stops early, with ``sequential=True`` (the markers' default); the function then takes
    #: ``sequential`` and ``budget`` (:mod:`robtest.properties.sequential`). None: it always runs to the end.
    stops: str | None = None
    #: The HTML report's plot of its measurement (a name in :data:`robtest.html_report.PLOTS`).
    plot: str | None = None
    #: A search with its own result (fuzzing), not a measurement read by a verdict rule; not compared with
    #: baselines.
    search: bool = False
    #: A bracketed verdict (:func:`robtest.properties.certified.bracket_status`): the measurement is a proven lower
    #: bound with an attack's upper bound beside it; pass when the proof clears the threshold, FAIL when the
    #: attack misses it, otherwise inconclusive.
    bracket: bool = False

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every keyword a marker may give, besides options passed through to an attack or strategy."""
        stop = STOP_KNOBS if self.stops else ()
        return tuple(dict.fromkeys((*self.required, *self.options, *stop, *KNOBS, *VERDICT_KNOBS)))

    @property
    def module(self) -> str:
        return self.function.partition(":")[0]

    def load(self) -> Callable[..., Any]:
        """The function that measures the property (imported on first use: it needs torch)."""
        return _load(self.function)


@functools.cache
def _load(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


PROPERTIES: dict[str, Property] = {p.name: p for p in (
    Property(
        name="accuracy_floor",
        summary="accuracy under an attack at radius eps is at least floor",
        function="robtest.properties.accuracy:robust_accuracy",
        threshold="floor", comparison=">=", required=("eps", "floor"), options=("attack",), passes="attack",
        stops="at the first look (64·2^k samples, then the end) whose exact interval of the accuracy clears the floor",
    ),
    Property(
        name="certified_floor",
        summary="the certified (proven) accuracy in the eps-ball is at least floor; FAIL when the attacked accuracy "
                "is below it, inconclusive in between",
        function="robtest.properties.certified:certified_accuracy",
        threshold="floor", comparison=">=", required=("eps", "floor"),
        options=("method", "norm", "attack", "time_limit"), passes="attack",
        stops="at the first look (64·2^k samples, then the end) whose certified interval lies above the floor or "
              "whose attacked interval lies below it",
        plot="bracket", bracket=True,
    ),
    Property(
        name="confidence_ceiling",
        summary="the model's mean (or max) softmax confidence on fooling images / rubbish inputs is at most ceiling",
        function="robtest.properties.confidence:non_example_confidence",
        threshold="ceiling", comparison="<=", required=("ceiling",),
        options=("source", "steps", "step_size", "classes", "std", "statistic"),
        stops="at the first look (a 16th of the samples, at least 16, doubling) whose Hoeffding interval of the mean "
              "clears the ceiling; with the max statistic, at the first confidence above it",
        plot="examples",
    ),
    Property(
        name="offset_invariance",
        summary="adding a constant to every pixel (then clipping) costs at most max_drop accuracy",
        function="robtest.properties.offset:offset_drop",
        threshold="max_drop", comparison="<=", required=("max_drop",), options=("offsets", "grid", "tol"),
        plot="offset",
    ),
    Property(
        name="power_law",
        summary="adversarial error at small eps grows as A*eps^B with B inside exponent=(lo, hi)",
        function="robtest.properties.power_law:power_law_exponent",
        threshold="exponent", comparison="in", required=("exponent",),
        options=("attack", "eps", "points", "min_errors", "max_error"), passes="attack",
        plot="power_law",
    ),
    Property(
        name="lipschitz",
        summary="the local Lipschitz constant (or loss sensitivity, or global bound) is at most max",
        function="robtest.properties.lipschitz:lipschitz_estimate",
        threshold="max", comparison="<=", required=("max",), options=("estimate", "radius", "steps"),
    ),
    Property(
        name="min_perturbation",
        summary="empirical robustness (mean minimal perturbation / input norm) is at least floor",
        function="robtest.properties.min_perturbation:minimal_perturbation",
        threshold="floor", comparison=">=", required=("floor",), options=("attack", "norm", "eps_max", "bisections"),
        passes="attack",
    ),
    Property(
        name="fuzz",
        summary="hypothesis finds no perturbation from strategy that changes more than max_flips predictions "
                "(default 0); the strategy's own options (eps, max_offset...) pass through",
        function="robtest.fuzz:fuzz",
        threshold="max_flips", comparison="<=", required=("strategy",),
        options=("max_examples", "budget", "max_flips", "guided"), passes="strategy", plot="artifacts", search=True,
    ),
)}


def marker_errors(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """What is wrong with ``@pytest.mark.<name>(*args, **kwargs)``; empty when nothing is. Options passed through
    to an attack or strategy are checked when the property runs (against that registry)."""
    spec = PROPERTIES[name]
    errs = []
    if args:
        errs.append(f"@{name} takes keyword arguments only (e.g. {spec.threshold}=...), got positional {args!r}")
    missing = [k for k in spec.required if k not in kwargs]
    if missing:
        errs.append(f"@{name} needs {', '.join(missing)}; it accepts: {', '.join(spec.accepted)}")
    if spec.passes is None:
        unknown = sorted(set(kwargs) - set(spec.accepted))
        if unknown:
            errs.append(f"@{name} does not take {', '.join(unknown)}; it accepts: {', '.join(spec.accepted)}")
    return errs
