"""What the ``robust`` fixture returns: a model and its data bound to the run's settings.

Every property is a method returning a measurement; markers go through :meth:`RobustSession.check`, which
turns a marker's keyword arguments into a :class:`Verdict`. Each measurement is handed to ``recorder`` (the
plugin's summary) as a JSON-safe record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from robtest import diagnostics, progress
from robtest._markers import PROPERTIES
from robtest.attacks import get_attack
from robtest.errors import InvalidArgument
from robtest.evaluate import evaluate_accuracy
from robtest.measurement import Measurement
from robtest.models import on_device, resolve_device

__all__ = ["RobustSession", "Verdict", "RULES"]

RULES = ("point", "confident", "plausible")


#: Arguments of a property method that are not its settings (the run's knobs, the threshold, the verdict rule):
#: a baseline pairs records whose settings are equal.
_NOT_SETTINGS = frozenset({"self", "rule", "sequential", "allow", "samples", "seed", "batch_size", "confidence",
                           "options", "max_examples", "budget", "max_seconds", "max_samples"})


def _json_value(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool, type(None))):
        return v
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return repr(v)


def _property(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Remember a property call's settings (its own keyword arguments, without the threshold and the run's
    knobs) and its baseline ``tolerance`` while it runs, so the record it makes carries them."""
    sig = inspect.signature(fn)
    name = fn.__name__
    spec = PROPERTIES.get(name)
    skip = _NOT_SETTINGS | ({spec.threshold} if spec is not None else set())

    @functools.wraps(fn)
    def wrapper(self: RobustSession, *args: Any, **kwargs: Any) -> Any:
        tolerance = kwargs.pop("tolerance", None)
        if tolerance is not None:
            tolerance = threshold("tolerance", tolerance)
            if tolerance < 0:
                raise InvalidArgument(f"tolerance: expected a number >= 0 (an accuracy margin) but got {tolerance!r}")
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError:
            return fn(self, *args, **kwargs)  # let the method raise its own error
        bound.apply_defaults()
        settings = {k: _json_value(v) for k, v in bound.arguments.items() if k not in skip}
        settings.update({k: _json_value(v) for k, v in bound.arguments.get("options", {}).items()
                         if k not in _NOT_SETTINGS})
        if name == "accuracy_floor" or name == "accuracy":
            a = settings.get("attack")
            settings["attack"] = None if a in (None, "none", "clean") else a
        outer = self._pending
        self._pending = {"property": name, "settings": settings, "tolerance": tolerance}
        label = (self.record_id(name) if self.record_id is not None else None) or name
        try:
            with progress.task(label, self.progress_sink, live=self.progress_live, delay=self.progress_delay,
                               interval=1.0 if self.progress_live else self.progress_interval):
                return fn(self, *args, **kwargs)
        finally:
            self._pending = outer

    return wrapper


def threshold(name: str, value: object) -> float:
    """A threshold keyword must be a finite number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value or abs(value) == float("inf"):
        raise InvalidArgument(f"{name}: expected a finite number but got {value!r}")
    return float(value)


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

    @property
    def judged(self) -> Measurement:
        """What the verdict reads: the measurement with the indicator checks' counterexamples folded in."""
        return self.measurement.corrected

    @property
    def straddles(self) -> bool:
        """Whether the judged interval reaches both sides of the threshold (the evidence could change the verdict)."""
        j = self.judged
        return decide(j, self.threshold, self.comparison, "confident") != decide(j, self.threshold, self.comparison,
                                                                                 "plausible")

    @property
    def suspect(self) -> bool:
        """An indicator that no number can be trusted fired, or a counting indicator fired (a stronger probe found
        more counterexamples than noise) and the corrected interval straddles the threshold."""
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
                "verdict": self.status, **({"budget": self.budget} if not self.settled else {})}


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
    if rule not in RULES:
        raise InvalidArgument(f"rule: expected one of {RULES} but got {rule!r}")
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


@dataclass
class _Budget:
    """A property's budget: seconds of evaluation and/or samples; ``stopper`` wraps a sequential check."""

    seconds: float | None
    samples: int | None
    _timed_out: bool = False

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


class RobustSession:
    """A model, its data and the run's settings (device, samples, seed, batch size, rule, confidence)."""

    def __init__(
        self,
        model: torch.nn.Module,
        data: object,
        *,
        device: str | torch.device = "auto",
        samples: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        bounds: tuple[float, float] = (0.0, 1.0),
        confidence: float = 0.95,
        rule: str = "point",
        recorder: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if not callable(model):
            raise InvalidArgument(
                f"robust_model: expected a torch.nn.Module (or callable) but got {type(model).__name__}"
            )
        self.model, self.data = model, data
        self.device = resolve_device(device)
        self.samples, self.seed, self.batch_size = samples, seed, batch_size
        self.bounds, self.confidence, self.rule = bounds, confidence, rule
        self._recorder = recorder
        self._pending: dict[str, Any] | None = None
        self._fingerprints: dict[str, str | None] = {}
        self._stack = contextlib.ExitStack()
        # The model moves to the device once per session and goes back where it was in close().
        self._stack.enter_context(on_device(model, self.device))

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> RobustSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        s = {"samples": self.samples, "seed": self.seed, "batch_size": self.batch_size,
             "confidence": self.confidence, "allow": None}
        s.update({k: overrides.pop(k) for k in list(overrides) if k in s})
        return s

    @contextlib.contextmanager
    def _evaluation(self, seed: int) -> Any:
        """Collect the evaluation's diagnostics, with torch's global RNG seeded from ``seed`` (a randomised model
        draws from it: same numbers on a rerun) and the caller's RNG state given back afterwards."""
        from robtest.indicators import settle
        from robtest.rng import global_rng_kept

        with global_rng_kept(self.device), diagnostics.collecting() as found:
            torch.manual_seed(int(seed))
            yield found
            settle(found, warn=False)  # counting indicators reported outside evaluate_accuracy: noise dropped

    # -- baselines (robtest.baseline): the plugin sets these from --robust-baseline / --robust-save-baseline -------

    #: Gives the stable id the next record of a property will get (the plugin's: node id + "::" + property).
    record_id: Callable[[str], str] | None = None
    #: The baseline's entries by record id, when comparing with one (None: no comparison).
    baseline: dict[str, dict[str, Any]] | None = None
    baseline_tolerance: float = 0.0
    baseline_alpha: float = 0.05
    #: Saving a baseline: sequential stopping is off, so the baseline holds every sample's outcome.
    saving_baseline: bool = False

    def _fingerprint(self, what: str) -> str | None:
        if what not in self._fingerprints:
            if what == "model":
                from robtest.baseline import model_fingerprint

                self._fingerprints[what] = model_fingerprint(self.model)
            else:  # the data: their size and first batch in the data's own order
                from robtest.data import iter_indexed, num_samples

                digest = hashlib.sha256(str(num_samples(self.data)).encode())
                for _, x, y in iter_indexed(self.data, batch_size=self.batch_size, seed=None):
                    digest.update(x.contiguous().numpy().tobytes())
                    digest.update(y.to(torch.int64).numpy().tobytes())
                    break
                self._fingerprints[what] = digest.hexdigest()
        return self._fingerprints[what]

    def _baseline_entry(self, name: str) -> tuple[str | None, dict[str, Any] | None]:
        rid = self.record_id(name) if self.record_id is not None else None
        if self.baseline is None or rid is None:
            return rid, None
        return rid, self.baseline.get(rid)

    def _paired_ids(self, name: str) -> list[int] | None:
        """The baseline's sample ids for this accuracy, when there is a baseline to pair with (same settings)."""
        from robtest.baseline import check_pairing

        rid, entry = self._baseline_entry(name)
        if entry is None or "sample_ids" not in entry or self._pending is None:
            return None
        if check_pairing(entry, rid or name, self._pending["settings"]) is not None:
            return None
        return list(entry["sample_ids"])

    def _record(self, record: dict[str, Any]) -> None:
        if self._recorder is None:
            return
        pending = self._pending or {"property": record["property"], "settings": {}, "tolerance": None}
        record = {**record, "source": "marker" if self._from_marker else "call", "settings": pending["settings"],
                  "device": str(self.device),
                  "model_fingerprint": self._fingerprint("model")}
        if "outcomes" not in record.get("measurement", {}).get("details", {}):
            record["data_fingerprint"] = self._fingerprint("data")
        if self.baseline is not None and self.record_id is not None:
            from robtest.baseline import compare

            rid, entry = self._baseline_entry(record["property"])
            tolerance = self.baseline_tolerance if pending["tolerance"] is None else pending["tolerance"]
            record["baseline"] = compare(entry, record, rec_id=rid or record["property"], tolerance=tolerance,
                                         alpha=self.baseline_alpha)
        self._recorder(record)

    # -- properties -----------------------------------------------------------------------------------------

    @_property
    def accuracy(self, attack: str | None = None, eps: float = 0.0, **options: Any) -> Measurement:
        """Accuracy under ``attack`` at radius ``eps`` (clean when no attack); compares with a float.

        ``options`` are the attack's own (``steps``, ``norm``, ``restarts``...) plus ``samples``,
        ``batch_size``, ``seed`` and ``confidence`` to override the run's settings.
        """
        s = self._settings(options)
        allow = diagnostics.check_allow(s.pop("allow"))
        ids = self._paired_ids("accuracy")
        with self._evaluation(s["seed"]) as found:
            m = evaluate_accuracy(self.model, self.data, attack=attack, eps=eps, bounds=self.bounds,
                                  device=self.device, sample_ids=ids, precision=self.precision,
                                  channels_last=self.channels_last, **s, **options)
        m = m.with_diagnostics(found.items(), allow)
        self._record({"property": "accuracy", "measurement": m.to_record(), "threshold": None, "verdict": None})
        return m

    #: Where progress lines of long evaluations go (the plugin's terminal sink; None: nowhere), and whether
    #: the sink rewrites one line in place (a terminal) or writes plain lines (logs, xdist workers).
    progress_sink: Callable[[str], None] | None = None
    progress_live: bool = False
    #: Seconds an evaluation runs before its progress shows, and between two plain lines.
    progress_delay: float = 2.0
    progress_interval: float = 30.0

    #: Throughput options of accuracy evaluations (``--robust-precision``, ``--robust-channels-last``): the
    #: attack under bf16 autocast and/or on channels-last batches; points are judged in the model's precision
    #: (see :func:`robtest.evaluate.evaluate_accuracy`).
    precision: str = "fp32"
    channels_last: bool = False

    #: The run's time budget per property (``--robust-max-seconds``); a property's ``max_seconds`` wins.
    max_seconds: float | None = None

    def _budget(self, max_seconds: float | None, max_samples: int | None) -> _Budget | None:
        seconds = self.max_seconds if max_seconds is None else max_seconds
        if seconds is None and max_samples is None:
            return None
        if seconds is not None:
            seconds = threshold("max_seconds", seconds)
            if seconds <= 0:
                raise InvalidArgument(f"max_seconds: expected a number of seconds > 0 but got {seconds!r}")
        if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)
                                        or max_samples < 1):
            raise InvalidArgument(f"max_samples: expected an integer >= 1 but got {max_samples!r}")
        return _Budget(seconds, max_samples)

    @_property
    def accuracy_floor(self, *, eps: float, floor: float, attack: str | None = "auto", rule: str | None = None,
                       sequential: bool = False, allow: tuple[str, ...] | None = None,
                       max_seconds: float | None = None, max_samples: int | None = None,
                       **options: Any) -> Verdict:
        """Check accuracy under ``attack`` at ``eps`` against ``floor`` with the verdict ``rule``.

        The default attack is ``"auto"``, the AutoAttack-style ensemble (APGD-CE, APGD-T with the DLR loss, then
        Square, each on the points still correct): the strongest evaluation that stays affordable. Name another
        attack (``attack="pgd", steps=40``) to measure that attack instead. ``attack="transfer",
        surrogate=other_model`` (with ``surrogate_attack``, default ``"pgd"``, and its options) judges examples
        crafted on ``other_model``; in a marker, ``surrogate`` is the name of a fixture returning that model.

        With ``sequential=True`` (the marker's default) the data are taken in a seeded random order and the
        evaluation stops at a planned look once the verdict cannot change at the run's confidence; the reported
        interval is the one valid under those repeated looks (see :mod:`robtest.properties.sequential`) and
        ``details["samples_used"]`` says how many samples it took.

        A budget, ``max_seconds`` (also ``--robust-max-seconds`` for the run) or ``max_samples``, stops the
        evaluation when it runs out; the verdict is then read only if the interval already lies on one side of
        the floor, and is "inconclusive" (never a pass) otherwise. A budget makes the evaluation sequential.
        """
        rule = self._rule(rule)
        threshold("floor", floor)
        s = self._settings(options)
        s.pop("allow")
        allow = diagnostics.check_allow(allow)
        budget = self._budget(max_seconds, max_samples)
        attack = None if attack in (None, "none", "clean") else attack
        if attack is not None:
            get_attack(attack).check_options(options, where="accuracy_floor")
        check = None
        ids = self._paired_ids("accuracy_floor")
        sequential = sequential or budget is not None
        if ids is not None or self.saving_baseline:
            sequential = False  # the baseline's samples, every one of them: the two runs pair sample by sample
        from robtest.data import num_samples

        n_total = len(ids) if ids is not None else num_samples(self.data, s["samples"])
        if sequential and n_total:
            # The data come in the seeded random order of robtest.data.order, so every look sees a fair sample.
            from robtest.properties.sequential import SequentialCheck

            check = SequentialCheck(n_total=n_total, threshold=float(floor), comparison=">=",
                                    confidence=s["confidence"], kind="proportion")
        stop: Any = check
        if budget is not None:
            if budget.samples is not None and budget.samples < n_total:
                if ids is not None:
                    ids = ids[:budget.samples]
                else:
                    s["samples"] = budget.samples  # the first max_samples of the same seeded order
            stop = budget.stopper(check)
        with self._evaluation(s["seed"]) as found:
            m = evaluate_accuracy(self.model, self.data, attack=attack, eps=eps, bounds=self.bounds,
                                  device=self.device, stop=stop, sample_ids=ids, precision=self.precision,
                                  channels_last=self.channels_last, **s, **options)
        m = m.with_diagnostics(found.items(), allow)
        if check is not None:
            low, high = check.interval(m.details["correct"], m.n)
            details = check.details(m.n)
            if "counterexamples" in m.details:  # the corrected numbers under the same sequential interval
                from robtest.evaluate import corrected

                details["corrected"] = corrected(m.details["counterexamples"], m.n,
                                                 lambda k: check.interval_of(k, m.n), s["confidence"])
            context = m.context
            if budget is not None and budget.ran_out(m.n, n_total):
                context += f" ({budget.ran_out(m.n, n_total)}: stopped after {m.n} of {n_total} samples)"
            elif details["stopped_early"]:  # say why n is smaller than the data
                context += f" (sequential: settled after {m.n} of {details['samples_planned']} samples)"
            m = dataclasses.replace(m, low=low, high=high, context=context, details={**m.details, **details})
        if budget is not None:
            ran_out = budget.ran_out(m.n, n_total)
            if ran_out:
                m = dataclasses.replace(m, details={**m.details, "budget": ran_out, "samples_planned": n_total})
                if decide(m.corrected, float(floor), ">=", "confident") != decide(m.corrected, float(floor), ">=",
                                                                                    "plausible"):
                    return self._verdict("accuracy_floor", m, float(floor), rule, settled=False, budget=ran_out)
        return self._verdict("accuracy_floor", m, float(floor), rule)

    # -- the properties of robtest.properties: each a measurement turned into a verdict ----------------------------

    def _rule(self, rule: str | None) -> str:
        rule = rule or self.rule
        if rule not in RULES:
            raise InvalidArgument(f"rule: expected one of {RULES} but got {rule!r}")
        return rule

    def _split(self, name: str, options: dict[str, Any], *, passthrough: bool = False
               ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run's settings with overrides, and the options left over (the attack's, when ``passthrough``)."""
        s = self._settings(options)
        spec = PROPERTIES[name]
        unknown = sorted(k for k in options if not (passthrough and k in spec.optional))
        if unknown:
            raise InvalidArgument(f"{name}: expected keyword arguments among {', '.join(spec.accepted)} but got "
                                  f"{', '.join(unknown)}")
        return s, options

    def _verdict(self, name: str, m: Measurement, limit: float | tuple[float, float], rule: str, *,
                 settled: bool = True, budget: str = "") -> Verdict:
        comparison = PROPERTIES[name].comparison
        v = Verdict(name, m, limit, comparison, rule, decide(m.corrected, limit, comparison, rule), settled, budget)
        self._record(v.to_record())
        return v

    @_property
    def confidence_ceiling(self, *, ceiling: float, source: str = "fooling", steps: int = 100,
                           step_size: float = 0.01, classes: int | list[int] | None = None, std: float = 0.1,
                           statistic: str = "mean", sequential: bool = False, rule: str | None = None,
                           max_seconds: float | None = None, max_samples: int | None = None,
                           **options: Any) -> Verdict:
        """The model's mean (or max) confidence on non-examples from ``source`` is at most ``ceiling``.

        See :func:`robtest.properties.non_example_confidence`; ``samples`` (default 200) counts non-examples.
        A budget (``max_seconds``, ``max_samples``) works as in :meth:`accuracy_floor`: "inconclusive" when it
        runs out before the interval clears the ceiling.
        """
        from robtest.properties._common import input_shape
        from robtest.properties.confidence import non_example_confidence

        rule = self._rule(rule)
        threshold("ceiling", ceiling)
        s, _ = self._split("confidence_ceiling", options)
        allow = diagnostics.check_allow(s.pop("allow"))
        budget = self._budget(max_seconds, max_samples)
        limit = None
        if self.baseline is not None or self.saving_baseline:
            sequential = False  # every non-example: the baseline's per-sample values pair with this run's
        if budget is not None:
            sequential = True
            limit = functools.partial(budget.stopper(None), 0.0)
        n_total = s["samples"] or 200
        with self._evaluation(s["seed"]) as found:
            m = non_example_confidence(
                self.model, shape=input_shape(self.data), source=source, classes=classes, samples=n_total,
                steps=steps, step_size=step_size, std=std, statistic=statistic, ceiling=float(ceiling),
                sequential=sequential, bounds=self.bounds, batch_size=s["batch_size"], seed=s["seed"],
                device=self.device, confidence=s["confidence"], limit=limit)
        m = m.with_diagnostics(found.items(), allow)
        if budget is not None:
            ran_out = budget.ran_out(m.n, n_total)
            if ran_out and decide(m, float(ceiling), "<=", "confident") != decide(m, float(ceiling), "<=",
                                                                                    "plausible"):
                m = dataclasses.replace(m, details={**m.details, "budget": ran_out})
                return self._verdict("confidence_ceiling", m, float(ceiling), rule, settled=False, budget=ran_out)
        return self._verdict("confidence_ceiling", m, float(ceiling), rule)

    @_property
    def offset_invariance(self, *, max_drop: float, offsets: tuple[float, float] = (-0.5, 0.5), grid: int = 21,
                          tol: float = 1e-3, rule: str | None = None, **options: Any) -> Verdict:
        """Adding the worst constant in ``offsets`` to every pixel costs at most ``max_drop`` accuracy.

        See :func:`robtest.properties.offset_drop`.
        """
        from robtest.properties.offset import offset_drop

        rule = self._rule(rule)
        threshold("max_drop", max_drop)
        s, _ = self._split("offset_invariance", options)
        allow = diagnostics.check_allow(s.pop("allow"))
        with self._evaluation(s["seed"]) as found:
            m = offset_drop(self.model, self.data, offsets=offsets, grid=grid, tol=tol, bounds=self.bounds,
                            device=self.device, **s)
        m = m.with_diagnostics(found.items(), allow)
        return self._verdict("offset_invariance", m, float(max_drop), rule)

    @_property
    def power_law(self, *, exponent: tuple[float, float], attack: str = "fgsm",
                  eps: tuple[float, ...] = (0.002, 0.1), points: int = 8, min_errors: int = 5,
                  max_error: float = 0.5, rule: str | None = None, **options: Any) -> Verdict:
        """The exponent B of adversarial error ``A·ε^B`` lies in ``exponent=(lo, hi)``.

        See :func:`robtest.properties.power_law_exponent`; attack options (``norm``, ``steps``...) pass through.
        """
        from robtest.validation import pair
        from robtest.properties.power_law import power_law_exponent

        rule = self._rule(rule)
        limits = pair("exponent", exponent)
        s, attack_options = self._split("power_law", options, passthrough=True)
        allow = diagnostics.check_allow(s.pop("allow"))
        with self._evaluation(s["seed"]) as found:
            m = power_law_exponent(self.model, self.data, attack=attack, eps=eps, points=points, min_errors=min_errors,
                                   max_error=max_error, bounds=self.bounds, device=self.device, **s, **attack_options)
        m = m.with_diagnostics(found.items(), allow)
        return self._verdict("power_law", m, limits, rule)

    @_property
    def lipschitz(self, *, max: float, estimate: str = "local", radius: float = 0.05, steps: int = 30,
                  rule: str | None = None, **options: Any) -> Verdict:
        """The chosen Lipschitz estimate (``local``, ``sensitivity`` or ``global``) is at most ``max``.

        See :func:`robtest.properties.lipschitz_estimate`.
        """
        from robtest.properties.lipschitz import lipschitz_estimate

        rule = self._rule(rule)
        threshold("max", max)
        s, _ = self._split("lipschitz", options)
        allow = diagnostics.check_allow(s.pop("allow"))
        with self._evaluation(s["seed"]) as found:
            m = lipschitz_estimate(self.model, self.data, estimate=estimate, radius=radius, steps=steps,
                                   bounds=self.bounds, device=self.device, **s)
        m = m.with_diagnostics(found.items(), allow)
        return self._verdict("lipschitz", m, float(max), rule)

    @_property
    def min_perturbation(self, *, floor: float, attack: str = "fgsm", norm: str = "linf",
                         eps_max: float | None = None, bisections: int = 12, rule: str | None = None,
                         **options: Any) -> Verdict:
        """Empirical robustness ρ = mean ‖δ_min‖/‖x‖ is at least ``floor``.

        See :func:`robtest.properties.minimal_perturbation`; attack options (``steps``...) pass through.
        """
        from robtest.properties.min_perturbation import minimal_perturbation

        rule = self._rule(rule)
        threshold("floor", floor)
        s, attack_options = self._split("min_perturbation", options, passthrough=True)
        allow = diagnostics.check_allow(s.pop("allow"))
        with self._evaluation(s["seed"]) as found:
            m = minimal_perturbation(self.model, self.data, attack=attack, norm=norm, eps_max=eps_max,
                                     bisections=bisections, bounds=self.bounds, device=self.device, **s,
                                     **attack_options)
        m = m.with_diagnostics(found.items(), allow)
        return self._verdict("min_perturbation", m, float(floor), rule)

    def check(self, name: str, kwargs: dict[str, Any]) -> Verdict:
        """Evaluate the property marker ``name`` with its keyword arguments."""
        if name not in PROPERTIES:
            raise InvalidArgument(f"property: expected one of {sorted(PROPERTIES)} but got {name!r}")
        if "sequential" in PROPERTIES[name].optional:
            # Markers are verdicts: stop as soon as the verdict is settled unless told otherwise.
            kwargs = {"sequential": True, **kwargs}
        self._from_marker = True
        try:
            return getattr(self, name)(**kwargs)
        finally:
            self._from_marker = False

    _from_marker = False

    # -- fuzzing (robtest.fuzz, robtest.strategies) --------------------------------------------------------------

    #: Where failing perturbations' images go (the plugin sets it from --robust-artifacts; None: not saved).
    artifacts_dir: str | None = None
    #: The budget tier for @fuzz markers without max_examples (the plugin sets it from --robust-budget).
    budget: str = "default"
    #: A hypothesis example database for fuzz(); the default is the current hypothesis profile's.
    hypothesis_database: Any = None

    def _fuzz_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluated points (a seeded subset when ``samples`` is set) and the model's clean predictions,
        computed once: an ``@given`` test calls :meth:`assert_invariant` for every example."""
        key = (self.samples, self.seed)
        cache = self.__dict__.setdefault("_fuzz_cache", {})
        if key not in cache:
            from robtest.data import iter_batches
            from robtest.fuzz import _logits

            # The seeded subset in the data's own order, so the indices a failure names are the user's.
            xs = [xb for xb, _ in iter_batches(self.data, batch_size=self.batch_size, samples=self.samples,
                                               seed=self.seed, in_data_order=True)]
            x = torch.cat(xs).to(self.device)
            cache[key] = (x, _logits(self.model, x, self.batch_size).argmax(1))
        return cache[key]

    def assert_invariant(self, perturbation: Any, *, subset: Any = None, max_flips: int = 0) -> Any:
        """Check that ``perturbation`` (from :mod:`robtest.strategies`) changes at most ``max_flips`` of the
        model's predictions on the test points (or on ``subset``: a number of points or their indices).

        Raises :class:`robtest.errors.InvarianceError` (an AssertionError) naming the change and the flipped
        points, and saves their images under ``artifacts_dir`` (inside ``@given``: the final, minimal example).
        Returns the :class:`robtest.fuzz.InvarianceCheck` when it holds.
        """
        from robtest.fuzz import assert_invariant

        __tracebackhide__ = True
        x, pred = self._fuzz_data()
        return assert_invariant(self.model, x, pred, perturbation, subset=subset, max_flips=max_flips,
                                artifacts=self.artifacts_dir, batch_size=self.batch_size, seed=self.seed,
                                eligible=torch.ones_like(pred, dtype=torch.bool))

    @_property
    def fuzz(self, *, strategy: str, max_examples: int | None = None, budget: str | None = None,
             max_flips: int = 0, guided: bool = False, **options: Any) -> Any:
        """Search ``strategy`` (a name in :data:`robtest.strategies.STRATEGIES`; ``options`` are its own, e.g.
        ``eps``) for a perturbation that changes more than ``max_flips`` predictions, shrink it, and return a
        verdict (:class:`robtest.fuzz.FuzzResult`). The marker: ``@pytest.mark.fuzz(strategy="offsets")``."""
        from robtest.fuzz import fuzz

        options.pop("rule", None)  # a count of flips found, not an estimate: no interval rule applies
        s = self._settings(options)
        if (s["samples"], s["seed"]) != (self.samples, self.seed):
            saved = (self.samples, self.seed)
            self.samples, self.seed = s["samples"], s["seed"]
            try:
                x, pred = self._fuzz_data()
            finally:
                self.samples, self.seed = saved
        else:
            x, pred = self._fuzz_data()
        db = {} if self.hypothesis_database is None else {"database": self.hypothesis_database}
        result = fuzz(self.model, x, pred, strategy, options=options, max_examples=max_examples,
                      budget=budget or self.budget, max_flips=max_flips, guided=guided, seed=s["seed"],
                      artifacts=self.artifacts_dir, batch_size=s["batch_size"], confidence=s["confidence"], **db)
        self._record(result.to_record())
        return result
