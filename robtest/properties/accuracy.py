"""Robust accuracy against a floor: what the ``accuracy_floor`` property measures.

:func:`robtest.evaluate_accuracy` counts; this adds what a verdict against a floor needs: the sequential stop
(:mod:`robtest.properties.sequential`) with the interval valid under its looks, a budget, and the baseline's
sample ids to pair with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from robtest.data import num_samples
from robtest.evaluate import corrected, evaluate_accuracy
from robtest.measurement import Measurement
from robtest.properties.sequential import Budget, SequentialCheck

__all__ = ["robust_accuracy"]


def robust_accuracy(
    model: torch.nn.Module,
    data: object,
    *,
    eps: float,
    attack: str | None = "auto",
    floor: float | None = None,
    sequential: bool = False,
    budget: Budget | None = None,
    sample_ids: list[int] | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    samples: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    confidence: float = 0.95,
    precision: str = "fp32",
    channels_last: bool = False,
    **options: Any,
) -> Measurement:
    """Accuracy under ``attack`` at radius ``eps`` (clean for None, ``"none"`` or ``"clean"``), to be read against
    ``floor``; ``options`` are the attack's own (``steps``, ``norm``, ``restarts``...).

    The default attack is ``"auto"``, the AutoAttack-style ensemble (APGD-CE, APGD-T with the DLR loss, then
    Square, each on the points still correct): the strongest evaluation that stays affordable. Name another
    attack (``attack="pgd", steps=40``) to measure that attack instead. ``attack="transfer",
    surrogate=other_model`` (with ``surrogate_attack``, default ``"pgd"``, and its options) judges examples
    crafted on ``other_model``; in a marker, ``surrogate`` is the name of a fixture returning that model.

    With ``sequential=True`` (the marker's default) the data are taken in a seeded random order and the
    evaluation stops at a planned look once the verdict against ``floor`` cannot change at the ``confidence``;
    the reported interval is the one valid under those repeated looks (see :mod:`robtest.properties.sequential`)
    and ``details["samples_used"]`` says how many samples it took.

    A ``budget`` (:class:`~robtest.properties.sequential.Budget`: ``max_seconds`` and/or ``max_samples``) stops
    the evaluation when it runs out; ``details["budget"]`` then names it (a verdict is then read only if the
    interval already lies on one side of the floor, and is "inconclusive" otherwise). ``sample_ids`` evaluates
    exactly those samples (a baseline's, to pair with); see :func:`robtest.evaluate_accuracy` for the rest.

    >>> from robtest.data import digits_tensors
    >>> _ = torch.manual_seed(0)  # reproducible initial weights
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> m = robust_accuracy(model, digits_tensors("test"), eps=0.0, attack=None, floor=0.05, sequential=True,
    ...                     device="cpu")
    >>> m.details["sequential"], m.n < 540 <= m.details["samples_planned"]
    (True, True)
    """
    attack = None if attack in (None, "none", "clean") else attack
    n_total = len(sample_ids) if sample_ids is not None else num_samples(data, samples)
    check = None
    if sequential and floor is not None and n_total:
        # The data come in the seeded random order of robtest.data.order, so every look sees a fair sample.
        check = SequentialCheck(n_total=n_total, threshold=float(floor), comparison=">=", confidence=confidence,
                                kind="proportion")
    stop: Any = check
    if budget is not None:
        if budget.samples is not None and budget.samples < n_total:
            if sample_ids is not None:
                sample_ids = sample_ids[:budget.samples]
            else:
                samples = budget.samples  # the first max_samples of the same seeded order
        stop = budget.stopper(check)
    m = evaluate_accuracy(model, data, attack=attack, eps=eps, bounds=bounds, batch_size=batch_size, samples=samples,
                          seed=seed, device=device, confidence=confidence, stop=stop, sample_ids=sample_ids,
                          precision=precision, channels_last=channels_last, **options)
    ran_out = budget.ran_out(m.n, n_total) if budget is not None else ""
    if check is not None:
        low, high = check.interval(m.details["correct"], m.n)
        details = check.details(m.n)
        if "counterexamples" in m.details:  # the corrected numbers under the same sequential interval
            details["corrected"] = corrected(m.details["counterexamples"], m.n,
                                             lambda k: check.interval_of(k, m.n), confidence)
        context = m.context
        if ran_out:
            context += f" ({ran_out}: stopped after {m.n} of {n_total} samples)"
        elif details["stopped_early"]:  # say why n is smaller than the data
            context += f" (sequential: settled after {m.n} of {details['samples_planned']} samples)"
        m = dataclasses.replace(m, low=low, high=high, context=context, details={**m.details, **details})
    if ran_out:
        m = dataclasses.replace(m, details={**m.details, "budget": ran_out, "samples_planned": n_total})
    return m
