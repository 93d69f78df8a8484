"""What the ``robust`` fixture returns: a model and its data bound to the run's settings.

Every property is a method returning a measurement; markers go through :meth:`RobustSession.check`, which
turns a marker's keyword arguments into a :class:`Verdict`. Each measurement is handed to ``recorder`` (the
plugin's summary) as a JSON-safe record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from robtest._markers import PROPERTIES
from robtest.attacks import get_attack
from robtest.errors import InvalidArgument
from robtest.evaluate import evaluate_accuracy
from robtest.measurement import Measurement
from robtest.models import on_device, resolve_device

__all__ = ["RobustSession", "Verdict", "RULES"]

RULES = ("point", "confident", "plausible")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one property check: the measurement, the threshold, and whether it held."""

    property: str
    measurement: Measurement
    threshold: float
    comparison: str  # ">=" for floors, "<=" for ceilings
    rule: str
    passed: bool

    def message(self) -> str:
        m = self.measurement
        word = {">=": "floor", "<=": "ceiling"}[self.comparison]
        if self.passed:
            return f"{m} meets the {word} {self.threshold:g}"
        side = "below" if self.comparison == ">=" else "above"
        how = {"point": "", "confident": " (rule 'confident': the whole interval must clear it)",
               "plausible": " (rule 'plausible': no part of the interval reaches it)"}[self.rule]
        return f"{m}, is {side} the {word} {self.threshold:g}{how}"

    def to_record(self) -> dict[str, Any]:
        return {"property": self.property, "measurement": self.measurement.to_record(),
                "threshold": f"{self.comparison} {self.threshold:g}", "rule": self.rule,
                "verdict": "pass" if self.passed else "FAIL"}


def decide(m: Measurement, threshold: float, comparison: str, rule: str) -> bool:
    """Apply a verdict rule: ``point`` (the estimate), ``confident`` (the whole interval), ``plausible`` (any of it)."""
    if rule not in RULES:
        raise InvalidArgument(f"rule: expected one of {RULES} but got {rule!r}")
    if comparison == ">=":
        v = {"point": m.value, "confident": m.low, "plausible": m.high}[rule]
        return v >= threshold
    v = {"point": m.value, "confident": m.high, "plausible": m.low}[rule]
    return v <= threshold


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
            raise InvalidArgument(f"robust_model: expected a torch.nn.Module (or callable) but got {type(model).__name__}")
        self.model, self.data = model, data
        self.device = resolve_device(device)
        self.samples, self.seed, self.batch_size = samples, seed, batch_size
        self.bounds, self.confidence, self.rule = bounds, confidence, rule
        self._recorder = recorder
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
             "confidence": self.confidence}
        s.update({k: overrides.pop(k) for k in list(overrides) if k in s})
        return s

    def _record(self, record: dict[str, Any]) -> None:
        if self._recorder is not None:
            self._recorder(record)

    # -- properties -----------------------------------------------------------------------------------------

    def accuracy(self, attack: str | None = None, eps: float = 0.0, **options: Any) -> Measurement:
        """Accuracy under ``attack`` at radius ``eps`` (clean when no attack); compares with a float.

        ``options`` are the attack's own (``steps``, ``norm``, ``restarts``...) plus ``samples``,
        ``batch_size``, ``seed`` and ``confidence`` to override the run's settings.
        """
        s = self._settings(options)
        m = evaluate_accuracy(self.model, self.data, attack=attack, eps=eps, bounds=self.bounds, device=self.device,
                              **s, **options)
        self._record({"property": "accuracy", "measurement": m.to_record(), "threshold": None, "verdict": None})
        return m

    def accuracy_floor(self, *, eps: float, floor: float, attack: str | None = "pgd", rule: str | None = None,
                       **options: Any) -> Verdict:
        """Check accuracy under ``attack`` at ``eps`` against ``floor`` with the verdict ``rule``."""
        rule = rule or self.rule
        if rule not in RULES:
            raise InvalidArgument(f"rule: expected one of {RULES} but got {rule!r}")
        s = self._settings(options)
        attack = None if attack in (None, "none", "clean") else attack
        if attack is not None:
            get_attack(attack).check_options(options, where="accuracy_floor")
        m = evaluate_accuracy(self.model, self.data, attack=attack, eps=eps, bounds=self.bounds, device=self.device,
                              **s, **options)
        v = Verdict("accuracy_floor", m, float(floor), ">=", rule, decide(m, float(floor), ">=", rule))
        self._record(v.to_record())
        return v

    def check(self, name: str, kwargs: dict[str, Any]) -> Verdict:
        """Evaluate the property marker ``name`` with its keyword arguments."""
        if name not in PROPERTIES:
            raise InvalidArgument(f"property: expected one of {sorted(PROPERTIES)} but got {name!r}")
        return getattr(self, name)(**kwargs)
