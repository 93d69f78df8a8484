"""Bracketed robust accuracy: a certified lower bound (:func:`robtest.certify.certify`) beside the attack's upper
bound (:func:`robtest.evaluate.evaluate_accuracy`), on the same samples.

Per sample, three outcomes: *certified* (no perturbation in the ball changes the prediction, proven), *broken*
(misclassified clean, or an attack found an example, re-predicted), *unknown* (neither). Certified and broken
never both hold: a point the attack broke is not certified, and a certificate on a broken point is a robtest bug
(:class:`~robtest.errors.AttackInvariantError`). The certified accuracy is a lower bound of the true robust
accuracy, the attacked one an upper bound, and the gap says how much an attack-only verdict could be off.
"""

from __future__ import annotations

from typing import Any

import torch

from robtest import distributed
from robtest.certify import certify, outcomes
from robtest.data import indexed_source, iter_indexed
from robtest.errors import UnsupportedModelError
from robtest.evaluate import evaluate_accuracy
from robtest.measurement import Measurement
from robtest.models import resolve_device
from robtest.stats import proportion_ci

__all__ = ["certified_accuracy", "bracket_status"]


def certified_accuracy(model: torch.nn.Module, data: object, *, eps: float, norm: str = "linf",
                       method: str = "crown", attack: str = "auto", bounds: tuple[float, float] = (0.0, 1.0),
                       batch_size: int = 256, samples: int | None = None, seed: int = 0,
                       device: str | torch.device | None = "auto", confidence: float = 0.95,
                       time_limit: float = 10.0, sample_ids: list[int] | None = None, stop: Any = None,
                       **options: Any) -> Measurement:
    """The certified accuracy of ``model`` on ``data`` in the ε-ball (``norm``, pixel units, intersected with
    ``bounds``) by ``method`` ("ibp", "crown", "alpha-crown" or "milp"), with the accuracy under ``attack``
    (and its ``options``) on the same samples in ``details["attacked"]``.

    The attack runs first (:func:`robtest.evaluate.evaluate_accuracy`, with its indicators and ``stop``); the
    points it left robust are then bounded, in batches of ``batch_size`` and shared over torchrun ranks like
    every evaluation. A model the bound engine cannot trace (a layer it does not support) is not an error here:
    nothing is certified, and ``details["unsupported"]`` says why.

    Returns a :class:`~robtest.Measurement` of the certified accuracy (Wilson interval) whose ``details`` hold
    ``attacked`` (value, low, high), ``gap`` (attacked − certified), the per-sample ``outcomes3`` (1 certified,
    −1 broken, 0 unknown), the ``sample_ids``, ``outcomes`` (1: certified, for baseline pairing), ``method`` and
    ``seconds_per_sample`` of the bounds. The attack's diagnostics ride along: they cannot touch a certificate,
    and a broken point is a real example whatever they say.

    >>> import torch
    >>> from robtest.data import digits_tensors
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> m = certified_accuracy(model, digits_tensors("test"), eps=0.01, attack="fgsm", samples=32, device="cpu")
    >>> m.value <= m.details["attacked"]["value"]
    True
    """
    attacked = evaluate_accuracy(model, data, attack=attack, eps=eps, bounds=bounds, batch_size=batch_size,
                                 samples=samples, seed=seed, device=device, confidence=confidence, stop=stop,
                                 sample_ids=sample_ids, norm=norm, **options)
    ids = list(attacked.details["sample_ids"])
    robust = list(attacked.details["outcomes"])
    n = len(ids)
    dev = resolve_device(device)
    src, _ = indexed_source(data)
    todo = torch.tensor([i for i, r in zip(ids, robust, strict=True) if r], dtype=torch.int64, device="cpu")
    unsupported = ""
    seconds: list[float] = []

    def bound(share: torch.Tensor, _: torch.Tensor) -> list[int]:
        got: list[int] = []
        if not share.numel():
            return got
        for _ids, xb, yb in iter_indexed(src, batch_size=batch_size, sample_ids=share.tolist()):
            cert = certify(model, xb.to(dev), yb.to(dev).long(), eps=eps, norm=norm, bounds=bounds, method=method,
                           time_limit=time_limit, batch_size=min(batch_size, 64))
            seconds.append(cert.seconds * xb.shape[0])
            got += cert.certified.to(torch.int8).tolist()
        return got

    certified_ids: set[int] = set()
    try:
        parts = distributed.map_share(todo, bound, batch_size=batch_size, where="certified_accuracy")
        flags = distributed.merge(parts, len(todo), batch_size)
        certified_ids = {int(i) for i, c in zip(todo.tolist(), flags, strict=True) if c}
    except UnsupportedModelError as err:
        unsupported = str(err)
    three = [1 if i in certified_ids else (0 if r else -1) for i, r in zip(ids, robust, strict=True)]
    # the invariant, checked on every point: certified implies not broken
    outcomes(torch.tensor([t == 1 for t in three], dtype=torch.bool, device="cpu"),
             torch.tensor([not r for r in robust], dtype=torch.bool, device="cpu"))
    k = sum(t == 1 for t in three)
    low, high = proportion_ci(k, n, confidence=confidence)
    a = attacked.corrected
    details = {
        "attacked": {"value": a.value, "low": a.low, "high": a.high, "correct": attacked.details["correct"],
                     "attack": attacked.details["attack"], "own": attacked.value},
        "certified": k, "unknown": sum(t == 0 for t in three), "gap": a.value - k / n if n else 0.0,
        "method": method, "norm": norm, "eps": float(eps), "sample_ids": ids, "outcomes3": three,
        "outcomes": [int(t == 1) for t in three], "clean_accuracy": attacked.details["clean_accuracy"],
        "data_fingerprint": attacked.details["data_fingerprint"],
        "seconds_per_sample": sum(seconds) / max(len(todo), 1),
    }
    if unsupported:
        details["unsupported"] = unsupported
    for key in ("samples_used", "samples_planned", "sequential", "stopped_early", "looks"):
        if key in attacked.details:
            details[key] = attacked.details[key]
    return Measurement(
        name="certified accuracy", value=k / n if n else 0.0, low=low, high=high, n=n, confidence=confidence,
        context=f"by {method} {'L∞' if norm == 'linf' else 'L2'} ε={eps:g}; {attacked.context}"
        + (" (model not supported by the bound engine: nothing certified)" if unsupported else ""),
        details=details, diagnostics=attacked.diagnostics)


def bracket_status(m: Measurement, floor: float, rule: str) -> tuple[str, str]:
    """The bracketed verdict of ``m`` (a :func:`certified_accuracy`) against ``floor``: ("pass", ...) when the
    certified accuracy clears it under ``rule`` (proven), ("FAIL", ...) when the attacked accuracy misses it
    (shown by real examples), else ("inconclusive", ...) with the gap; and the sentence that says so.

    >>> m = Measurement("certified accuracy", 0.4, 0.35, 0.45, n=400, details={"attacked": {"value": 0.46,
    ...                 "low": 0.41, "high": 0.51}, "gap": 0.06})
    >>> bracket_status(m, 0.3, "point")[0], bracket_status(m, 0.5, "point")[0], bracket_status(m, 0.42, "point")[0]
    ('pass', 'FAIL', 'inconclusive')
    """
    from robtest.verdict import decide

    att = m.details["attacked"]
    attacked = Measurement("attacked accuracy", att["value"], att["low"], att["high"], n=m.n,
                           confidence=m.confidence)
    bracket = (f"certified {m.value:.3f} [{m.low:.3f}–{m.high:.3f}], attacked {attacked.value:.3f} "
               f"[{attacked.low:.3f}–{attacked.high:.3f}], gap {m.details.get('gap', 0.0):.3f}")
    if decide(m, floor, ">=", rule):
        return "pass", f"{bracket}: the certified accuracy meets the floor {floor:g}, proven"
    if not decide(attacked, floor, ">=", rule):
        return "FAIL", f"{bracket}: the attacked accuracy is below the floor {floor:g}, shown by real examples"
    why = m.details.get("unsupported")
    return "inconclusive", (f"{bracket}: the floor {floor:g} lies between the two, so neither a proof nor a "
                            "counterexample settles it; a tighter method (method='alpha-crown' or 'milp'), a "
                            "certifiably trained model, or a lower floor would" + (f" ({why})" if why else ""))
