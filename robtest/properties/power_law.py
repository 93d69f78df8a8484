"""Power-law scaling of adversarial error at small ε (Cubuk et al. 2018, C1–C5).

On points the model gets right, the error under an attack grows like ``A·ε^B`` for small ε: B ≈ 1 for FGSM
and PGD, ≈ 2 for the least-likely-class step. The fit is a weighted least-squares line in log-log over the ε
values where the error is measurable (at least ``min_errors`` flips and at most ``max_error``); the interval of
``B`` is a seeded bootstrap over the samples (rows), refitting on the same ε range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from robtest.attacks import get_attack
from robtest.attacks._driver import check_bounds, predict
from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.properties._common import map_samples
from robtest.rng import SampleRNG
from robtest.stats import bootstrap_ci
from robtest.validation import number, positive_int

__all__ = ["eps_sweep", "fit_power_law", "error_curve", "power_law_exponent"]


def eps_sweep(eps: Sequence[float], points: int = 8) -> np.ndarray:
    """The ε values of a sweep: a pair ``(low, high)`` means ``points`` geometric steps, longer lists are used as given.

    >>> eps_sweep((0.01, 0.08), points=4).round(3).tolist()
    [0.01, 0.02, 0.04, 0.08]
    """
    try:
        e = np.asarray([float(v) for v in eps], dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgument(f"eps: expected a pair (low, high) or a list of ε values but got {eps!r}") from None
    if e.size < 2 or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise InvalidArgument(f"eps: expected at least two finite ε values > 0 but got {eps!r}")
    if e.size == 2:
        if not e[0] < e[1]:
            raise InvalidArgument(f"eps: expected a range (low, high) with low < high but got {eps!r}")
        return np.geomspace(e[0], e[1], positive_int("points", points))
    return np.unique(e)


def _fit(log_eps: np.ndarray, err: np.ndarray) -> tuple[float, float]:
    if np.any(err <= 0):
        return float("nan"), float("nan")
    # log p̂ has variance ≈ (1 − p)/(n·p): weight each point by its inverse standard deviation, so the few-flip
    # points at the smallest ε do not dominate the slope.
    w = np.sqrt(err / np.clip(1 - err, 1e-3, None))
    slope, intercept = np.polyfit(log_eps, np.log(err), 1, w=w)
    return float(slope), float(np.exp(intercept))


def fit_power_law(eps: Sequence[float], flips: Any, *, min_errors: int = 5, max_error: float = 0.5,
                  confidence: float = 0.95, seed: int = 0, n_resamples: int = 999) -> Measurement:
    """Fit ``error(ε) = A·ε^B`` to per-sample outcomes ``flips`` (n samples × len(eps), True where the attack won).

    >>> rng = np.random.default_rng(0)
    >>> eps = np.geomspace(0.01, 0.1, 6)
    >>> eps_star = 0.2 * rng.random(4000) ** (1 / 1.5)       # P(ε* <= ε) = (ε/0.2)^1.5 exactly
    >>> m = fit_power_law(eps, eps_star[:, None] <= eps[None, :])
    >>> round(m.value, 1), m.low < 1.5 < m.high
    (1.5, True)
    """
    e = np.asarray(eps, dtype=float)
    f = np.asarray(flips, dtype=bool)
    if f.ndim != 2 or f.shape[1] != e.size:
        raise InvalidArgument(f"flips: expected shape (n, {e.size}), one column per ε, but got {f.shape}")
    if f.shape[0] == 0:
        raise InvalidArgument("flips: expected at least one sample but got none (no point was classified correctly)")
    min_errors = positive_int("min_errors", min_errors)
    max_error = number("max_error", max_error, low=0, high=1, strict_low=True)
    k = f.sum(0)
    err = k / f.shape[0]
    use = (k >= min_errors) & (err <= max_error)
    if int(use.sum()) < 2:
        shown = ", ".join(f"ε={a:.3g}: {b:.3f}" for a, b in zip(e, err, strict=True))
        raise InvalidArgument(
            f"power law: expected at least two ε values with a measurable error (>= {min_errors} flips and "
            f"<= {max_error:g}) but got {int(use.sum())} ({shown}); widen eps or raise samples")
    log_eps = np.log(e[use])
    b, a = _fit(log_eps, err[use])
    fu = f[:, use]
    low, high = bootstrap_ci(fu, lambda rows: _fit(log_eps, rows.mean(0))[0], confidence=confidence, seed=seed,
                             n_resamples=n_resamples)
    return Measurement(
        name="power-law exponent", value=b, low=low, high=high, n=int(f.shape[0]), confidence=confidence,
        context=f"of adversarial error over ε in [{e[use].min():.3g}, {e[use].max():.3g}]",
        details={"A": a, "fit_points": int(use.sum()), "eps_low": float(e[use].min()),
                 "eps_high": float(e[use].max()), "eps": e.tolist(), "error": err.tolist()},
    )


def error_curve(model: torch.nn.Module, data: object, eps: Sequence[float], *, attack: str = "fgsm",
                bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 256, samples: int | None = None,
                seed: int = 0, device: str | torch.device = "auto", **options: Any) -> dict[str, np.ndarray]:
    """Per-sample outcomes of ``attack`` at each ε on the points the model gets right.

    Returns ``flips`` (n × len(eps)), ``to_second`` (True where the new prediction is the clean runner-up)
    and ``delta12`` (the clean top-1 minus top-2 logit), all over the initially-correct points.
    """
    spec = get_attack(attack)
    spec.check_options(options)
    lo, hi = check_bounds(bounds)
    dev = resolve_device(device)
    m = len(eps)

    def sweep(x: torch.Tensor, y: torch.Tensor, rng: SampleRNG) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = predict(model, x)
        ok = logits.argmax(1) == y
        kept = ok.nonzero().squeeze(1)
        x, y, logits = x[kept], y[kept], logits[kept]
        if not y.numel():
            empty = torch.zeros((0, m), dtype=torch.bool, device=x.device)
            return ok, {"flips": empty, "second": empty, "gap": torch.zeros(0, dtype=logits.dtype, device=x.device)}
        top = logits.topk(2, dim=1)
        f_b, s_b = [], []
        for k, e in enumerate(eps):
            # each ε's attack draws from its own per-sample stream (seed, sample id, ε index)
            xa = spec.fn(model, x, y, eps=float(e), bounds=(lo, hi), generator=rng.take(kept).fork(k), **options)
            pred = predict(model, xa).argmax(1)
            f_b.append(pred != y)
            s_b.append(pred == top.indices[:, 1])
        return ok, {"flips": torch.stack(f_b, 1), "second": torch.stack(s_b, 1),
                    "gap": top.values[:, 0] - top.values[:, 1]}

    with on_device(model, dev), eval_mode(model):
        rows = map_samples(model, data, sweep, batch_size=batch_size, samples=samples, seed=seed, bounds=bounds,
                           device=dev, where="error_curve")
    if "flips" not in rows:
        return {"flips": np.zeros((0, m), dtype=bool), "to_second": np.zeros((0, m), dtype=bool),
                "delta12": np.zeros(0)}
    return {"flips": rows["flips"].numpy(), "to_second": rows["second"].numpy(), "delta12": rows["gap"].numpy()}


def power_law_exponent(
    model: torch.nn.Module,
    data: object,
    *,
    attack: str = "fgsm",
    eps: Sequence[float] = (0.002, 0.1),
    points: int = 8,
    min_errors: int = 5,
    max_error: float = 0.5,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    samples: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    confidence: float = 0.95,
    **options: Any,
) -> Measurement:
    """The exponent ``B`` of adversarial error ``A·ε^B`` under ``attack`` over a sweep of small ``eps``.

    ``details`` also holds the Δ12 distribution (``delta12_median``, ``delta12``: top-1 minus top-2 logit of
    the initially-correct points) and ``second_class_fraction``, the share of flips inside the fit range that
    go to the clean runner-up class (Cubuk et al.: over 95% at small ε).

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible initial weights
    >>> from robtest.data import digits_tensors
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> m = power_law_exponent(model, digits_tensors("test"), eps=(0.001, 0.05), device="cpu", max_error=0.9)
    >>> m.name, m.low <= m.value <= m.high
    ('power-law exponent', True)
    """
    e = eps_sweep(eps, points)
    curve = error_curve(model, data, e.tolist(), attack=attack, bounds=bounds, batch_size=batch_size,
                        samples=samples, seed=seed, device=device, **options)
    m = fit_power_law(e, curve["flips"], min_errors=min_errors, max_error=max_error, confidence=confidence,
                      seed=seed)
    lo_e, hi_e = m.details["eps_low"], m.details["eps_high"]
    cols = (e >= lo_e) & (e <= hi_e)
    fl, sec = curve["flips"][:, cols], curve["to_second"][:, cols]
    d12 = curve["delta12"]
    details = {**m.details, "attack": attack, "delta12_median": float(np.median(d12)) if d12.size else float("nan"),
               "delta12": d12.tolist(), "second_class_fraction": float(sec[fl].mean()) if fl.any() else float("nan")}
    ctx = f"of {get_attack(attack).title} error over ε in [{lo_e:.3g}, {hi_e:.3g}]"
    return Measurement(m.name, m.value, m.low, m.high, n=m.n, confidence=confidence, context=ctx, details=details)
