"""What the ``robust`` fixture returns: a model and its data bound to the run's settings.

Every property of the table (:data:`robtest.property_table.PROPERTIES`) is a method of :class:`RobustSession`,
made from its entry and from the function that measures it (the signature and docstring are the function's),
and a marker that comes in through :meth:`RobustSession.check`. Methods and markers run one path: the
threshold and the rule, the run's knobs with the call's overrides, the options check (an attack's against its
registry), the evaluation context (torch's RNG seeded, diagnostics collected), the sequential stop and budget, the
verdict, and the record handed to ``recorder`` (the plugin's summary) as a JSON-safe dict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from robtest import diagnostics, progress
from robtest.attacks import get_attack
from robtest.errors import InvalidArgument
from robtest.evaluate import evaluate_accuracy
from robtest.measurement import Measurement
from robtest.models import on_device, resolve_device
from robtest.properties._common import input_shape
from robtest.properties.sequential import Budget
from robtest.property_table import KNOBS, PROPERTIES, STOP_KNOBS, Property
from robtest.settings import Settings
from robtest.validation import number, pair
from robtest.verdict import Verdict, check_rule, decide, straddles

__all__ = ["RobustSession"]

_CLEAN = (None, "none", "clean")  # attack names that mean no attack
_RUN = object()  # "the run's setting", where None means something else


@dataclass(frozen=True)
class _Call:
    """One property call, as its record tells it."""

    property: str
    #: The call's own keyword arguments (without the threshold and the run's knobs): a baseline pairs records
    #: whose settings are equal.
    settings: dict[str, Any]
    #: The baseline comparison's margin for this call (None: the run's).
    tolerance: float | None
    source: str  # "marker" or "call"


def _json_value(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool, type(None))):
        return v
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return repr(v)


def _tolerance(value: object) -> float | None:
    if value is None:
        return None
    t = number("tolerance", value)
    if t < 0:
        raise InvalidArgument(f"tolerance: expected a number >= 0 (an accuracy margin) but got {t!r}")
    return t


def _settings_of(entry: Property, params: Mapping[str, inspect.Parameter], given: dict[str, Any]) -> dict[str, Any]:
    """What a baseline pairs a call on: the property's own keywords (the function's defaults for those not given,
    without the threshold) and the options passed through, JSON-safe."""
    own = [k for k in (*entry.required, *entry.options) if k != entry.threshold]
    settings = {k: _json_value(given[k] if k in given else params[k].default) for k in own}
    settings.update({k: _json_value(v) for k, v in given.items() if k not in own})
    if entry.passes == "attack" and settings.get("attack") in _CLEAN:
        settings["attack"] = None
    return settings


class RobustSession:
    """A model, its data and the run's :class:`~robtest.settings.Settings` (device, samples, seed, batch size,
    rule, confidence, budgets, baseline...), fixed when the session is made.

    ``RobustSession(model, data, device="cpu", seed=3)`` overrides fields of the default settings;
    ``recorder(record)`` receives every record, ``record_id(property)`` gives the stable id the next record of a
    property will get (the plugin's: node id + "::" + property), and ``progress`` is ``(sink, live)``: where
    progress lines of long evaluations go, and whether the sink rewrites one line in place (a terminal) or writes
    plain lines (logs, xdist workers).
    """

    #: Seconds an evaluation runs before its progress shows, and between two plain lines.
    progress_delay: float = 2.0
    progress_interval: float = 30.0

    def __init__(
        self,
        model: torch.nn.Module,
        data: object,
        settings: Settings | None = None,
        *,
        recorder: Callable[[dict[str, Any]], None] | None = None,
        record_id: Callable[[str], str | None] | None = None,
        progress: tuple[Callable[[str], None] | None, bool] = (None, False),
        **overrides: Any,
    ) -> None:
        if not callable(model):
            raise InvalidArgument(
                f"robust_model: expected a torch.nn.Module (or callable) but got {type(model).__name__}"
            )
        settings = settings if settings is not None else Settings()
        self.settings = dataclasses.replace(settings, **overrides) if overrides else settings
        self.model, self.data = model, data
        self.device = resolve_device(self.settings.device)
        self._recorder, self._record_id = recorder, record_id
        self._progress_sink, self._progress_live = progress
        self._fingerprints: dict[str, str | None] = {}
        self._fuzz_cache: dict[tuple[int | None, int], tuple[torch.Tensor, torch.Tensor]] = {}
        # the model every property runs: the user's, or it behind robtest.Logits when it returns a structured
        # output with an unambiguous 'logits' field (decided at the first property, on a sample of the data)
        self._scored: Any = None
        self.adapted = ""  # what was done to read the logits ("" when nothing)
        # The model is not moved here: each property moves it to the device for its evaluation and back after
        # (see _task), so that the model is where the user put it whenever the user's own code runs.

    # -- the run's settings, as the session's own (read-only) --------------------------------------------------

    @property
    def samples(self) -> int | None:
        return self.settings.samples

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    @property
    def bounds(self) -> tuple[float, float]:
        return self.settings.bounds

    @property
    def confidence(self) -> float:
        return self.settings.confidence

    @property
    def rule(self) -> str:
        return self.settings.rule

    def close(self) -> None:
        """Nothing to give back (each property gives the model back when it ends); kept for ``with``."""

    def __enter__(self) -> RobustSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what every call shares ---------------------------------------------------------------------------------

    def _knobs(self, kw: dict[str, Any]) -> dict[str, Any]:
        """The run's knobs (samples, batch size, seed, confidence), with the call's overrides taken out of ``kw``."""
        return {k: kw.pop(k) if k in kw else getattr(self.settings, k) for k in KNOBS}

    @contextlib.contextmanager
    def _task(self, call: _Call) -> Iterator[None]:
        """Progress of the call's evaluation, named by its record id."""
        label = (self._record_id(call.property) if self._record_id is not None else None) or call.property
        # the model goes to the session's device for the evaluation and back where it was after, also when an
        # exception leaves it: between two properties the user's model is where the user put it
        with progress.task(label, self._progress_sink, live=self._progress_live, delay=self.progress_delay,
                           interval=1.0 if self._progress_live else self.progress_interval), \
                on_device(self.model, self.device):
            self._adapt()
            yield

    def _adapt(self) -> None:
        """Decide once whether the properties need the logits read out of the model's output."""
        if self._scored is not None:
            return
        from robtest.adapters import adapt_outputs
        from robtest.data import iter_indexed

        self._scored = self.model
        if not isinstance(self.model, torch.nn.Module):
            return
        try:
            _, x, _ = next(iter_indexed(self.data, batch_size=2, seed=None))
            self._scored, self.adapted = adapt_outputs(self.model, x.to(self.device))
        except Exception:  # noqa: BLE001 - no data to look with, or a model that raises: the property's own
            # evaluation meets the same error where it is reported properly (named, and under torchrun exchanged
            # with the other ranks instead of leaving this one out of step)
            self._scored, self.adapted = self.model, ""

    @contextlib.contextmanager
    def _evaluation(self, seed: int) -> Iterator[diagnostics.Collector]:
        """Collect the evaluation's diagnostics, with torch's global RNG seeded from ``seed`` (a randomised model
        draws from it: same numbers on a rerun) and the caller's RNG state given back afterwards."""
        from robtest.indicators import settle
        from robtest.rng import global_rng_kept

        with global_rng_kept(self.device), diagnostics.collecting() as found:
            torch.manual_seed(int(seed))
            yield found
            settle(found, warn=False)  # counting indicators reported outside evaluate_accuracy: noise dropped

    # -- records and baselines (robtest.baseline) ------------------------------------------------------------

    def _fingerprint(self, what: str) -> str | None:
        if what not in self._fingerprints:
            if what == "model":
                from robtest.baseline import model_fingerprint

                self._fingerprints[what] = model_fingerprint(self.model)
            else:  # the data: their size and first batch in the data's own order
                from robtest.data import iter_indexed, num_samples

                digest = hashlib.sha256(str(num_samples(self.data)).encode())
                for _, x, y in iter_indexed(self.data, batch_size=self.batch_size, seed=None):
                    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
                    digest.update(y.to(torch.int64).cpu().numpy().tobytes())
                    break
                self._fingerprints[what] = digest.hexdigest()
        return self._fingerprints[what]

    def _baseline_entry(self, name: str) -> tuple[str | None, dict[str, Any] | None]:
        rid = self._record_id(name) if self._record_id is not None else None
        if self.settings.baseline is None or rid is None:
            return rid, None
        return rid, self.settings.baseline.get(rid)

    def _paired_ids(self, call: _Call) -> list[int] | None:
        """The baseline's sample ids for this accuracy, when there is a baseline to pair with (same settings)."""
        from robtest.baseline import check_pairing

        rid, entry = self._baseline_entry(call.property)
        if entry is None or "sample_ids" not in entry:
            return None
        if check_pairing(entry, rid or call.property, call.settings) is not None:
            return None
        return list(entry["sample_ids"])

    def _record(self, record: dict[str, Any], call: _Call) -> None:
        if self._recorder is None:
            return
        record = {**record, "source": call.source, "settings": call.settings, "device": str(self.device),
                  "model_fingerprint": self._fingerprint("model")}
        m = record.get("measurement") or {}
        if self.adapted and "'logits' field" not in m.get("context", ""):  # said in every property's setting
            record["measurement"] = {**m, "context": m.get("context", "") + " (logits from the output's 'logits' "
                                                                             "field)"}
        if "outcomes" not in record.get("measurement", {}).get("details", {}):
            record["data_fingerprint"] = self._fingerprint("data")
        if self.settings.baseline is not None and self._record_id is not None:
            from robtest.baseline import compare

            rid, entry = self._baseline_entry(record["property"])
            tolerance = self.settings.baseline_tolerance if call.tolerance is None else call.tolerance
            record["baseline"] = compare(entry, record, rec_id=rid or record["property"], tolerance=tolerance,
                                         alpha=self.settings.baseline_alpha)
        self._recorder(record)

    # -- reuse of unchanged measurements (robtest.cache) ------------------------------------------------------

    def _cache_key(self, name: str, args: dict[str, Any], budget: Budget | None = None) -> str | None:
        """The cache key of a call, or None when it must be evaluated (no cache, a time budget, a plain callable)."""
        if self.settings.cache is None or (budget is not None and budget.seconds is not None):
            return None
        if not isinstance(self.model, torch.nn.Module):
            return None
        from robtest.cache import MeasurementCache, code_fingerprint

        if "code" not in self._fingerprints:
            self._fingerprints["code"] = code_fingerprint(self.model)
        from robtest.baseline import model_fingerprint

        def part(v: Any) -> Any:  # a surrogate model by its weights and code; anything else as in the settings
            if isinstance(v, torch.nn.Module):
                return f"module {model_fingerprint(v)} {code_fingerprint(v)}"
            if isinstance(v, torch.Tensor):
                return f"tensor {hashlib.sha256(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()}"
            return _json_value(v)  # an object without a stable repr (a lambda) is never found again

        skip = ("device", "batch_size", "budget")
        return MeasurementCache.key({
            "property": name, "args": {k: part(v) for k, v in sorted(args.items()) if k not in skip},
            "max_samples": budget.samples if budget is not None else None, "model": self._fingerprint("model"),
            "code": self._fingerprints["code"], "data": self._fingerprint("data"), "device": self.device.type,
            "adapted": self.adapted})

    def _measure(self, key: str | None, allow: tuple[str, ...], seed: int,
                 compute: Callable[[], Measurement]) -> tuple[Measurement, bool]:
        """The call's measurement with its diagnostics (``allow`` applied): from the cache under ``key``, or
        computed in the evaluation context (and stored); and whether it came from the cache."""
        from robtest.cache import MeasurementCache, measurement_from_record

        store = MeasurementCache(self.settings.cache) if key is not None and self.settings.cache else None
        hit = store.get(key) if store is not None else None  # type: ignore[arg-type]
        if hit is not None:
            return measurement_from_record(hit).with_diagnostics((), allow), True
        from robtest.evaluate import checkpointing, drop_checkpoints

        prefix = str(store.folder / f"{key}.partial") if store is not None else None
        with self._evaluation(seed) as found, (checkpointing(prefix) if prefix else contextlib.nullcontext()):
            m = compute()  # a killed run's evaluations resume from their checkpoints under the cache
        m = m.with_diagnostics(found.items())
        if store is not None and prefix is not None:
            store.put(key, m.to_record())  # type: ignore[arg-type]
            drop_checkpoints(prefix)
        return m.with_diagnostics((), allow), False

    # -- a measurement without a threshold ------------------------------------------------------------------

    def accuracy(self, attack: str | None = None, eps: float = 0.0, **options: Any) -> Measurement:
        """Accuracy under ``attack`` at radius ``eps`` (clean when no attack); compares with a float.

        ``options`` are the attack's own (``steps``, ``norm``, ``restarts``...) plus ``samples``,
        ``batch_size``, ``seed`` and ``confidence`` to override the run's settings.
        """
        kw = dict(options)
        tolerance = _tolerance(kw.pop("tolerance", None))
        allow = diagnostics.check_allow(kw.pop("allow", None))
        knobs = self._knobs(kw)
        settings = {"attack": None if attack in _CLEAN else attack, "eps": _json_value(eps),
                    **{k: _json_value(v) for k, v in kw.items()}}
        call = _Call("accuracy", settings, tolerance, "call")
        with self._task(call):
            ids = self._paired_ids(call)
            args = {"attack": attack, "eps": eps, "bounds": self.bounds, "sample_ids": ids,
                    "precision": self.settings.precision, "channels_last": self.settings.channels_last, **knobs,
                    **kw}
            m, cached = self._measure(self._cache_key("accuracy", args), allow, knobs["seed"],
                                      lambda: evaluate_accuracy(self._scored, self.data, device=self.device, **args))
            self._record({"property": "accuracy", "measurement": m.to_record(), "threshold": None, "verdict": None,
                          **({"cached": True} if cached else {})}, call)
        return m

    # -- the properties of the table: one path for all ------------------------------------------------------

    def check(self, name: str, kwargs: dict[str, Any]) -> Any:
        """Evaluate the property marker ``name`` with its keyword arguments: a :class:`~robtest.verdict.Verdict`
        (a :class:`robtest.fuzz.FuzzResult` for ``fuzz``)."""
        entry = PROPERTIES.get(name)
        if entry is None:
            raise InvalidArgument(f"property: expected one of {sorted(PROPERTIES)} but got {name!r}")
        if entry.stops:
            # Markers are verdicts: stop as soon as the verdict is settled unless told otherwise.
            kwargs = {"sequential": True, **kwargs}
        if entry.search:
            return self._fuzz(kwargs, "marker")
        return self._verdict(entry, kwargs, "marker")

    def _options(self, entry: Property, kw: dict[str, Any], fn: Callable[..., Any]) -> dict[str, Any]:
        """The call's options: the property's own, and (``passes="attack"``) every option of the named attack
        from its registry; anything else is refused, naming what is accepted."""
        own = {k: kw.pop(k) for k in entry.options if k in kw}
        if not kw:
            return own
        accepted = ", ".join(entry.accepted)
        if entry.passes == "attack":
            attack = own.get("attack", inspect.signature(fn).parameters["attack"].default)
            if attack in _CLEAN:
                return {**own, **kw}  # the function says what options without an attack mean
            spec = get_attack(attack)
            unknown = sorted(set(kw) - set(spec.accepted(kw)))
            if not unknown:
                return {**own, **kw}
            try:
                spec.check_options(kw)
            except InvalidArgument as exc:
                raise InvalidArgument(f"{entry.name}: expected keyword arguments among {accepted} but got "
                                      f"{', '.join(unknown)}; {exc}") from None
        raise InvalidArgument(f"{entry.name}: expected keyword arguments among {accepted} but got "
                              f"{', '.join(sorted(kw))}")

    def _verdict(self, entry: Property, kwargs: dict[str, Any], source: str) -> Verdict:
        """Every property's one path: read the call, evaluate in the evaluation context, judge, record."""
        fn = entry.load()
        params = inspect.signature(fn).parameters
        kw = dict(kwargs)
        missing = [k for k in entry.required if k not in kw]
        if missing:
            raise TypeError(f"{entry.name}() missing required keyword argument(s): {', '.join(map(repr, missing))}")
        tolerance = _tolerance(kw.pop("tolerance", None))
        rule = check_rule(kw.pop("rule", None) or self.rule)
        value = kw.pop(entry.threshold)
        limit = pair(entry.threshold, value) if entry.comparison == "in" else number(entry.threshold, value)
        given = {k: kw.pop(k) for k in entry.required if k in kw}
        allow = diagnostics.check_allow(kw.pop("allow", None))
        knobs = self._knobs(kw)
        stop = {k: kw.pop(k) for k in STOP_KNOBS if k in kw} if entry.stops else {}
        given.update(self._options(entry, kw, fn))
        call = _Call(entry.name, _settings_of(entry, params, given), tolerance, source)

        args: dict[str, Any] = {**given, **knobs, "bounds": self.bounds, "device": self.device}
        if args["samples"] is None:
            del args["samples"]  # all of them, or the function's own count (non-examples: 200)
        if entry.threshold in params:
            args[entry.threshold] = limit
        budget = None
        if entry.stops:
            seconds = stop.get("max_seconds")
            budget = Budget.of(self.settings.max_seconds if seconds is None else seconds, stop.get("max_samples"))
            sequential = bool(stop.get("sequential", False)) or budget is not None
            if self.settings.baseline is not None or self.settings.saving_baseline:
                sequential = False  # every sample: a baseline's per-sample values pair with this run's
            args.update(sequential=sequential, budget=budget)
        args.update({k: getattr(self.settings, k) for k in ("precision", "channels_last") if k in params})

        with self._task(call):
            if "sample_ids" in params:
                args["sample_ids"] = self._paired_ids(call)
            if "shape" in params:
                args["shape"] = input_shape(self.data)
            m, cached = self._measure(self._cache_key(entry.name, args, budget), allow, knobs["seed"],
                                      lambda: fn(self._scored, *([self.data] if "data" in params else []), **args))
            ran_out = m.details.get("budget", "") if budget is not None else ""
            if entry.bracket:  # a proof beside an attack: pass proven, FAIL shown, or inconclusive
                from robtest.properties.certified import bracket_status

                status, text = bracket_status(m, limit, rule, ran_out=ran_out)
                v = Verdict(entry.name, m, limit, entry.comparison, rule, status == "pass", status != "inconclusive",
                            ran_out if status == "inconclusive" else "", bracket=text)
            else:
                # A budget that ran out before the interval cleared the threshold: the verdict is "inconclusive".
                settled = not (ran_out and straddles(m.corrected, limit, entry.comparison))
                met = decide(m.corrected, limit, entry.comparison, rule)
                v = Verdict(entry.name, m, limit, entry.comparison, rule, met, settled, "" if settled else ran_out)
            self._record({**v.to_record(), **({"cached": True} if cached else {})}, call)
        return v

    # -- fuzzing (robtest.fuzz, robtest.strategies) --------------------------------------------------------------

    def _fuzz_points(self, samples: Any = _RUN, seed: Any = _RUN) -> torch.Tensor:
        """The points fuzzing evaluates, as they come from the data (on the host, for data there): the seeded
        subset (by default the run's) in the data's own order, so the indices a failure names are the user's."""
        from robtest.data import iter_batches

        xs = [xb for xb, _ in iter_batches(self.data, batch_size=self.batch_size,
                                           samples=self.samples if samples is _RUN else samples,
                                           seed=self.seed if seed is _RUN else seed, in_data_order=True)]
        return torch.cat(xs)

    def _fuzz_data(self, samples: Any = _RUN, seed: Any = _RUN) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluated points (a seeded subset when ``samples`` is set; by default the run's) and the model's clean
        predictions, computed once: an ``@given`` test calls :meth:`assert_invariant` for every example."""
        key = (self.samples if samples is _RUN else samples, self.seed if seed is _RUN else seed)
        if key not in self._fuzz_cache:
            from robtest.fuzz import _logits

            x = self._fuzz_points(*key).to(self.device)
            with on_device(self.model, self.device):
                self._adapt()
                self._fuzz_cache[key] = (x, _logits(self._scored, x, self.batch_size).argmax(1))
        return self._fuzz_cache[key]

    def assert_invariant(self, perturbation: Any, *, subset: Any = None, max_flips: int = 0) -> Any:
        """Check that ``perturbation`` (from :mod:`robtest.strategies`) changes at most ``max_flips`` of the
        model's predictions on the test points (or on ``subset``: a number of points or their indices).

        Raises :class:`robtest.errors.InvarianceError` (an AssertionError) naming the change and the flipped
        points, and saves their images under the settings' ``artifacts`` folder (inside ``@given``: the final,
        minimal example). Returns the :class:`robtest.fuzz.InvarianceCheck` when it holds.
        """
        from robtest.fuzz import assert_invariant

        __tracebackhide__ = True
        x, pred = self._fuzz_data()
        return assert_invariant(self._scored, x, pred, perturbation, subset=subset, max_flips=max_flips,
                                artifacts=self.settings.artifacts, batch_size=self.batch_size, seed=self.seed,
                                eligible=torch.ones_like(pred, dtype=torch.bool))

    def fuzz(self, *, strategy: str, max_examples: int | None = None, budget: str | None = None,
             max_flips: int = 0, guided: bool = False, **options: Any) -> Any:
        """Search ``strategy`` (a name in :data:`robtest.strategies.STRATEGIES`; ``options`` are its own, e.g.
        ``eps``) for a perturbation that changes more than ``max_flips`` predictions, shrink it, and return a
        verdict (:class:`robtest.fuzz.FuzzResult`). The marker: ``@pytest.mark.fuzz(strategy="offsets")``."""
        return self._fuzz({"strategy": strategy, "max_examples": max_examples, "budget": budget,
                           "max_flips": max_flips, "guided": guided, **options}, "call")

    def _fuzz(self, kwargs: Mapping[str, Any], source: str) -> Any:
        from robtest.fuzz import fuzz

        kw = dict(kwargs)
        tolerance = _tolerance(kw.pop("tolerance", None))
        kw.pop("rule", None)  # a count of flips found, not an estimate: no interval rule applies
        kw.pop("allow", None)
        knobs = self._knobs(kw)
        strategy, guided = kw.pop("strategy"), kw.pop("guided", False)
        max_examples, budget, max_flips = kw.pop("max_examples", None), kw.pop("budget", None), kw.pop("max_flips", 0)
        call = _Call("fuzz", {"strategy": _json_value(strategy), "guided": _json_value(guided),
                              **{k: _json_value(v) for k, v in kw.items()}}, tolerance, source)
        with self._task(call):
            x, pred = self._fuzz_data(knobs["samples"], knobs["seed"])
            db = {} if self.settings.hypothesis_database is None else {"database": self.settings.hypothesis_database}
            result = fuzz(self._scored, x, pred, strategy, options=kw, max_examples=max_examples,
                          budget=budget or self.settings.budget, max_flips=max_flips, guided=guided, seed=knobs["seed"],
                          artifacts=self.settings.artifacts, batch_size=knobs["batch_size"],
                          confidence=knobs["confidence"], **db)
            self._record(result.to_record(), call)
        return result


# -- the methods of the table's properties ------------------------------------------------------------------------

def _signature(entry: Property, fn: Callable[..., Any]) -> inspect.Signature:
    """The method's signature: the property's keywords with the function's own defaults and annotations."""
    P = inspect.Parameter
    own = inspect.signature(fn).parameters
    limit = "tuple[float, float]" if entry.comparison == "in" else "float"

    def annotation(k: str) -> Any:
        return limit if k == entry.threshold else own[k].annotation if k in own else P.empty

    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    params += [P(k, P.KEYWORD_ONLY, annotation=annotation(k)) for k in entry.required]
    params += [P(k, P.KEYWORD_ONLY, default=own[k].default if k in own else None, annotation=annotation(k))
               for k in entry.options]
    if entry.stops:
        params += [P("sequential", P.KEYWORD_ONLY, default=False, annotation="bool"),
                   P("max_seconds", P.KEYWORD_ONLY, default=None, annotation="float | None"),
                   P("max_samples", P.KEYWORD_ONLY, default=None, annotation="int | None")]
    params += [P(k, P.KEYWORD_ONLY, default=None, annotation=a) for k, a in (
        ("samples", "int | None"), ("batch_size", "int | None"), ("seed", "int | None"),
        ("confidence", "float | None"), ("rule", "str | None"), ("allow", "tuple[str, ...] | None"),
        ("tolerance", "float | None"))]
    if entry.passes:
        params.append(P("options", P.VAR_KEYWORD, annotation="Any"))
    return inspect.Signature(params, return_annotation="Verdict")


def _docstring(entry: Property, fn: Callable[..., Any]) -> str:
    """The method's docstring: the property in one line, its keywords, then the function's own (without its
    examples, which run in the function's module)."""
    where = {">=": "at least", "<=": "at most", "in": "inside"}[entry.comparison]
    text = inspect.getdoc(fn) or ""
    paragraphs = text.split("\n\n")
    cut = next((i for i, p in enumerate(paragraphs) if ">>>" in p), len(paragraphs))
    if cut and paragraphs[cut - 1].rstrip().endswith(":") and cut < len(paragraphs):
        cut -= 1  # the sentence that introduces the examples
    own = ", ".join(f"``{k}``" for k in entry.options) or "none"
    passes = ("; every option of the named attack passes through (checked against the attack registry)"
              if entry.passes == "attack" else "")
    stops = (f" With ``sequential=True`` (a marker's default) it stops {entry.stops}; a budget (``max_seconds``, "
             "also the run's ``--robust-max-seconds``, or ``max_samples``) stops it too, and the verdict is then "
             "'inconclusive' (never a pass) unless the interval already clears the threshold."
             if entry.stops else "")
    head = (f"The ``{entry.name}`` property: {entry.summary}. Returns a :class:`~robtest.verdict.Verdict` whose "
            f"measurement must be {where} ``{entry.threshold}`` by ``rule`` (default: the run's); the marker "
            f"``@pytest.mark.{entry.name}(...)`` takes the same keywords.\n\n"
            f"Measured by :func:`{fn.__module__}.{fn.__name__}`; its options: {own}{passes}.{stops} "
            "``samples``, ``batch_size``, ``seed`` and ``confidence`` override the run's settings for this call, "
            "``allow`` names indicators the test accepts (:mod:`robtest.diagnostics`), ``tolerance`` is the baseline "
            f"comparison's margin.\n\n{fn.__name__}:\n\n")
    return head + "\n\n".join(paragraphs[:cut])


def _method(entry: Property) -> Callable[..., Verdict]:
    fn = entry.load()

    def method(self: RobustSession, **kwargs: Any) -> Verdict:
        return self._verdict(entry, kwargs, "call")

    method.__name__ = entry.name
    method.__qualname__ = f"RobustSession.{entry.name}"
    method.__signature__ = _signature(entry, fn)  # type: ignore[attr-defined]
    method.__doc__ = _docstring(entry, fn)
    return method


for _entry in PROPERTIES.values():
    if not _entry.search:  # a search (fuzz) is a method of its own above
        setattr(RobustSession, _entry.name, _method(_entry))
del _entry
