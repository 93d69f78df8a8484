"""The run's settings: one frozen object a :class:`~robtest.session.RobustSession` is built from.

The plugin reads every option once (:mod:`robtest.options`) and makes one of these for the ``robust`` fixture;
``RobustSession(model, data, device="cpu", seed=3)`` makes one from keywords. Nothing changes it afterwards:
a property call overrides a knob for itself (``samples=``, ``seed=``...) without touching the session.

This module imports only the standard library (the plugin names :data:`PRECISIONS` without torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PRECISIONS", "Settings"]

#: Precisions of the attacks' forward and backward passes in accuracy evaluations (``--robust-precision``;
#: :class:`robtest.models.Fast`).
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Settings:
    """How a session evaluates: device, data subset, seed, batch size, box, intervals, verdicts, budgets, GPU
    throughput options, fuzzing, and the baseline it compares with or saves."""

    device: Any = "auto"
    #: Evaluate a seeded random subset of this many samples (None: all).
    samples: int | None = None
    seed: int = 0
    batch_size: int = 256
    bounds: tuple[float, float] = (0.0, 1.0)
    #: The confidence level of the intervals.
    confidence: float = 0.95
    #: The verdict rule (:data:`robtest.verdict.RULES`) for calls that name none.
    rule: str = "point"
    #: The run's time budget per property that stops early (``--robust-max-seconds``); a call's own wins.
    max_seconds: float | None = None
    #: Throughput options of accuracy evaluations: the attack under bf16 autocast and/or on channels-last
    #: batches; points are judged in the model's own precision (see :func:`robtest.evaluate_accuracy`).
    precision: str = "fp32"
    channels_last: bool = False
    #: The fuzzing budget tier (:data:`robtest.fuzz.BUDGETS`) for searches that name no ``max_examples``.
    budget: str = "default"
    #: Where failing perturbations' images go (None: not saved).
    artifacts: str | None = None
    #: A hypothesis example database for fuzzing; None: the current hypothesis profile's.
    hypothesis_database: Any = None
    #: The baseline's entries by record id, when comparing with one (None: no comparison).
    baseline: Mapping[str, dict[str, Any]] | None = None
    baseline_tolerance: float = 0.0
    baseline_alpha: float = 0.05
    #: Saving a baseline: sequential stopping is off, so the baseline holds every sample's outcome.
    saving_baseline: bool = False
    #: A folder of cached measurements (:mod:`robtest.cache`) to reuse and fill; None: every property evaluates.
    cache: str | None = None
