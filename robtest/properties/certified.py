"""Bracketed robust accuracy: a certified lower bound (:func:`robtest.certify.certify`) beside the attack's upper
bound (:func:`robtest.evaluate.evaluate_accuracy`), on the same samples; what the ``certified_floor`` property
measures.

Per sample, three outcomes: *certified* (no perturbation in the ball changes the prediction, proven), *broken*
(misclassified clean, or an attack found an example, re-predicted), *unknown* (neither). Certified and broken
never both hold: a point the attack broke is not certified, and a certificate on a broken point is a robtest bug
(:class:`~robtest.errors.AttackInvariantError`). The certified accuracy is a lower bound of the true robust
accuracy, the attacked one an upper bound, and the gap says how much an attack-only verdict could be off.

The verdict against a floor (:func:`bracket_status`): *pass* when the certified accuracy clears it (proven),
*FAIL* when the attacked accuracy misses it (shown by real examples), else *inconclusive*, which never passes.
Neither side can be moved by gradient masking: a masked model raises the attacked number, never the certified
one, and a broken point is a real example whatever the indicators say.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robtest import distributed
from robtest.certify import certify, outcomes
from robtest.certify.graph import trace
from robtest.data import indexed_source, iter_indexed, num_samples
from robtest.errors import UnsupportedModelError
from robtest.evaluate import corrected, evaluate_accuracy, per_class
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.properties.sequential import Budget, SequentialCheck
from robtest.stats import proportion_ci

__all__ = ["certified_accuracy", "bracket_status"]


class _Bracket:
    """The evaluation's ``stop`` of a bracketed verdict: it hears each look's per-sample outcomes
    (:meth:`observe`), bounds the points the attack left robust, and stops at a planned look once the certified
    accuracy's interval lies above the floor (pass, proven) or the attacked accuracy's below it (FAIL). Without
    a floor (``sequential=False``) it only bounds, at the end.

    Both intervals are the sequential ones (the same looks and error spending as ``accuracy_floor``). No split of
    α between them is needed: if the true robust accuracy is at least the floor, only a wrong attacked interval
    can give FAIL (the attacked accuracy is at least the true one); if it is below, only a wrong certified
    interval can give pass.
    """

    def __init__(self, bound: Callable[[list[int]], set[int]], *, n_total: int, floor: float | None,
                 confidence: float, sequential: bool) -> None:
        self._bound, self.floor = bound, floor
        self.pending: list[int] = []
        self.seen_ids: set[int] = set()
        self.certified: set[int] = set()
        self.cert = self.att = None
        if sequential and floor is not None and n_total:
            self.cert, self.att = (SequentialCheck(n_total=n_total, threshold=float(floor), comparison=">=",
                                                   confidence=confidence) for _ in range(2))
            self.planned = self.cert.planned

    def observe(self, rows: list[tuple[int, int]]) -> None:
        """The look's samples: (sample id, robust under the attack)."""
        for sid, robust in rows:
            self.seen_ids.add(int(sid))
            if robust:
                self.pending.append(int(sid))

    def flush(self, extra: list[int] = ()) -> None:  # type: ignore[assignment]
        todo, self.pending = [*self.pending, *extra], []
        if todo:
            self.certified |= self._bound(todo)

    def __call__(self, robust: float, seen: int) -> bool:
        self.flush()
        if self.cert is None or self.att is None:
            return False
        if self.cert.looks_taken >= len(self.planned) or seen < self.planned[self.cert.looks_taken]:
            return False
        self.cert(len(self.certified), seen)
        self.att(robust, seen)
        low = self.cert.interval(len(self.certified), seen)[0]
        high = self.att.interval(robust, seen)[1]
        return low >= self.floor or high < self.floor  # type: ignore[operator]


def certified_accuracy(model: torch.nn.Module, data: object, *, eps: float, norm: str = "linf",
                       method: str = "crown", attack: str = "auto", floor: float | None = None,
                       sequential: bool = False, budget: Budget | None = None, time_limit: float = 10.0,
                       bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 256, samples: int | None = None,
                       seed: int = 0, device: str | torch.device | None = "auto", confidence: float = 0.95,
                       sample_ids: list[int] | None = None, **options: Any) -> Measurement:
    """The certified accuracy of ``model`` on ``data`` in the ε-ball (``norm``, pixel units, intersected with
    ``bounds``) by ``method`` ("ibp", "crown", "alpha-crown" or "milp", the last complete up to ``time_limit``
    seconds per sample), with the accuracy under ``attack`` (and its ``options``) on the same samples in
    ``details["attacked"]``.

    The attack runs first (:func:`robtest.evaluate.evaluate_accuracy`, with its indicators); at each look the
    points it left robust are bounded, in batches of ``batch_size`` and shared over torchrun ranks like every
    evaluation. With ``sequential=True`` and a ``floor`` the evaluation stops at the first planned look whose
    certified interval lies above the floor or whose attacked interval lies below it; a ``budget`` stops it too.
    A model the bound engine cannot trace (a layer it does not support) is not an error here: nothing is
    certified, and ``details["unsupported"]`` says why.

    Returns a :class:`~robtest.Measurement` of the certified accuracy (Wilson interval, or the sequential one)
    whose ``details`` hold ``attacked`` (value, low, high: the attack's accuracy with the indicator checks'
    counterexamples folded in), ``gap`` (attacked − certified), the per-sample ``outcomes3`` (1 certified,
    −1 broken, 0 unknown), the ``sample_ids``, ``outcomes`` (1: certified, for baseline pairing), and the ``method``
    (no timings: a record is the same on every rerun; ``benchmarks/bench_certify.py`` measures the time per
    sample). The attack's diagnostics ride along: they cannot touch a certificate, and a broken point is a real
    example whatever they say.

    >>> import torch
    >>> from robtest.data import digits_tensors
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> m = certified_accuracy(model, digits_tensors("test"), eps=0.01, attack="fgsm", samples=32, device="cpu")
    >>> m.value <= m.details["attacked"]["value"]
    True
    """
    dev = resolve_device(device)
    n_total = len(sample_ids) if sample_ids is not None else num_samples(data, samples)
    if budget is not None and budget.samples is not None and budget.samples < n_total:
        if sample_ids is not None:
            sample_ids = sample_ids[:budget.samples]
        else:
            samples = budget.samples  # the first max_samples of the same seeded order
    src, _ = indexed_source(data)
    unsupported: list[str] = []

    def bound_share(share: torch.Tensor, _: torch.Tensor) -> list[int]:
        got: list[int] = []
        if unsupported:
            return [0] * share.numel()
        for _ids, xb, yb in iter_indexed(src, batch_size=batch_size, sample_ids=share.tolist()):
            cert = certify(model, xb.to(dev), yb.to(dev).long(), eps=eps, norm=norm, bounds=bounds, method=method,
                           time_limit=time_limit, batch_size=min(batch_size, 64))
            got += cert.certified.to(torch.int8).tolist()
        return got

    def bound(ids: list[int]) -> set[int]:
        todo = torch.tensor(ids, dtype=torch.int64, device="cpu")
        parts = distributed.map_share(todo, bound_share, batch_size=batch_size, where="certified_accuracy")
        flags = distributed.merge(parts, len(ids), batch_size)
        return {i for i, c in zip(ids, flags, strict=True) if c}

    bracket = _Bracket(bound, n_total=n_total, floor=floor, confidence=confidence, sequential=sequential)
    stop: Any = bracket if bracket.cert is not None else None
    if budget is not None:
        stop = budget.stopper(stop)
        if bracket.cert is not None:
            stop.observe = bracket.observe  # type: ignore[attr-defined]
    with on_device(model, dev), eval_mode(model):
        # whether the bound engine can trace the model, decided alike on every rank before any look
        _, x0, _ = next(iter_indexed(src, batch_size=1, sample_ids=[0]))
        try:
            trace(model, x0.to(dev))
        except UnsupportedModelError as err:
            unsupported.append(str(err))
        attacked = evaluate_accuracy(model, data, attack=attack, eps=eps, bounds=bounds, batch_size=batch_size,
                                     samples=samples, seed=seed, device=dev, confidence=confidence, stop=stop,
                                     sample_ids=sample_ids,
                                     **({"norm": norm} if attack is not None else {}), **options)
        ids = [int(i) for i in attacked.details["sample_ids"]]
        robust = list(attacked.details["outcomes"])
        # the points no look bounded (all of them without a sequential stop)
        bracket.flush([i for i, r in zip(ids, robust, strict=True) if r and i not in bracket.seen_ids])
    certified_ids = bracket.certified
    n = len(ids)
    three = [1 if i in certified_ids else (0 if r else -1) for i, r in zip(ids, robust, strict=True)]
    # the invariant, checked on every point: certified implies not broken
    outcomes(torch.tensor([t == 1 for t in three], dtype=torch.bool, device="cpu"),
             torch.tensor([not r for r in robust], dtype=torch.bool, device="cpu"))
    k = sum(t == 1 for t in three)
    a_robust = sum(robust)
    counter = attacked.details.get("counterexamples")
    details: dict[str, Any] = {}
    if bracket.cert is not None and bracket.att is not None and n:
        low, high = bracket.cert.interval(k, n)
        a_low, a_high = bracket.att.interval(a_robust, n)
        a = corrected(counter, n, lambda c: bracket.att.interval_of(c, n), confidence) if counter else {
            "value": a_robust / n, "low": a_low, "high": a_high}
        details.update(bracket.cert.details(n))
    else:
        low, high = proportion_ci(k, n, confidence=confidence)
        c = attacked.corrected
        a = {"value": c.value, "low": c.low, "high": c.high}
    ran_out = budget.ran_out(n, n_total) if budget is not None else ""
    details.update({
        "attacked": {"value": a["value"], "low": a["low"], "high": a["high"], "correct": attacked.details["correct"],
                     "attack": attacked.details["attack"], "own": attacked.value},
        "certified": k, "unknown": sum(t == 0 for t in three), "gap": (a["value"] - k / n) if n else 0.0,
        "method": method, "norm": norm, "eps": float(eps), "sample_ids": ids, "outcomes3": three,
        "outcomes": [int(t == 1) for t in three], "clean_accuracy": attacked.details["clean_accuracy"],
        "data_fingerprint": attacked.details["data_fingerprint"],
    })
    if floor is not None:
        details["floor"] = float(floor)
    if unsupported:
        details["unsupported"] = unsupported[0]
    if ran_out:
        details.update(budget=ran_out, samples_planned=n_total)
    if "labels" in attacked.details:  # per class: the certified accuracy; the flips are the attack's
        details.update(labels=attacked.details["labels"], flips=attacked.details["flips"],
                       per_class=per_class(attacked.details["labels"], details["outcomes"], confidence=confidence))
    context = (f"by {method} {'L∞' if norm == 'linf' else 'L2'} ε={eps:g}; {attacked.context}"
               + (" (model not supported by the bound engine: nothing certified)" if unsupported else ""))
    if ran_out:
        context += f" ({ran_out}: stopped after {n} of {n_total} samples)"
    elif details.get("stopped_early"):
        context += f" (sequential: settled after {n} of {details['samples_planned']} samples)"
    return Measurement(name="certified accuracy", value=k / n if n else 0.0, low=low, high=high, n=n,
                       confidence=confidence, context=context, details=details, diagnostics=attacked.diagnostics)


def bracket_status(m: Measurement, floor: float, rule: str, *, ran_out: str = "") -> tuple[str, str]:
    """The bracketed verdict of ``m`` (a :func:`certified_accuracy`) against ``floor``: ("pass", ...) when the
    certified accuracy clears it under ``rule`` (proven), ("FAIL", ...) when the attacked accuracy misses it
    (shown by real examples), else ("inconclusive", ...) with the gap; and the sentence that says so. When a
    budget ran out (``ran_out`` names it), only intervals wholly on one side settle it.

    >>> m = Measurement("certified accuracy", 0.4, 0.35, 0.45, n=400, details={"attacked": {"value": 0.46,
    ...                 "low": 0.41, "high": 0.51}, "gap": 0.06})
    >>> bracket_status(m, 0.3, "point")[0], bracket_status(m, 0.5, "point")[0], bracket_status(m, 0.42, "point")[0]
    ('pass', 'FAIL', 'inconclusive')
    >>> bracket_status(m, 0.38, "point", ran_out="max_samples=400")[0]
    'inconclusive'
    """
    from robtest.verdict import decide

    att = m.details["attacked"]
    attacked = Measurement("attacked accuracy", att["value"], att["low"], att["high"], n=m.n,
                           confidence=m.confidence)
    bracket = (f"certified {m.value:.3f} [{m.low:.3f}–{m.high:.3f}], attacked {attacked.value:.3f} "
               f"[{attacked.low:.3f}–{attacked.high:.3f}], gap {m.details.get('gap', 0.0):.3f}")
    proven = decide(m, floor, ">=", "confident" if ran_out else rule)
    shown = not decide(attacked, floor, ">=", "plausible" if ran_out else rule)
    if proven:
        return "pass", f"{bracket}: the certified accuracy meets the floor {floor:g}, proven"
    if shown:
        used = "plausible" if ran_out else rule
        how = "is below the floor" if used == "point" else f"misses, under the {used} rule, the floor"
        return "FAIL", f"{bracket}: the attacked accuracy {how} {floor:g}, shown by real examples"
    why = m.details.get("unsupported")
    if ran_out:
        return "inconclusive", (f"{bracket}: the budget {ran_out} ran out after {m.n} samples before a proof or a "
                                f"counterexample settled the floor {floor:g}; raise the budget to decide")
    return "inconclusive", (f"{bracket}: the floor {floor:g} lies between the two, so neither a proof nor a "
                            "counterexample settles it; a tighter method (method='alpha-crown' or 'milp'), a "
                            "certifiably trained model, or a lower floor would" + (f" ({why})" if why else ""))
