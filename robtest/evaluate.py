"""Accuracy of a model over a dataset, clean or under an attack, with a confidence interval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robtest.attacks import get_attack
from robtest.attacks._driver import check_batch, check_bounds, check_logits, predict
from robtest.attacks._norms import get_norm
from robtest.data import iter_batches
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.stats import proportion_ci

__all__ = ["evaluate_accuracy", "describe_attack"]

_SHOWN_OPTIONS = ("steps", "restarts", "step_size", "loss", "alpha")


def describe_attack(attack: str | None, eps: float, options: dict[str, Any]) -> str:
    """'under PGD L∞ ε=0.1, 40 steps' — the words a failure message and the summary use."""
    if attack is None or eps == 0:
        return "on clean inputs"
    spec = get_attack(attack)
    norm = get_norm(options.get("norm", "linf")).symbol
    parts = [f"under {spec.title} {norm} ε={eps:g}"]
    for key in _SHOWN_OPTIONS:
        if key in options:
            val = options[key]
            parts.append(f"{val} {key}" if key in ("steps", "restarts") else f"{key}={val}")
    return ", ".join(parts)


def evaluate_accuracy(
    model: torch.nn.Module,
    data: object,
    *,
    attack: str | None = None,
    eps: float = 0.0,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    samples: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    confidence: float = 0.95,
    stop: Callable[[int, int], bool] | None = None,
    **options: Any,
) -> Measurement:
    """Accuracy of ``model`` on ``data`` under ``attack`` at radius ``eps`` (clean accuracy when attack is None).

    Each batch goes to ``device`` on its own (the dataset never moves at once). Points the model already gets
    wrong are not attacked. Accuracy is counted from a separate forward pass on the returned examples. The
    model is evaluated in eval mode and given back in the mode and on the device it had.

    ``stop(correct, seen)``, when given, is asked after every batch and ends the evaluation early when it
    returns True (the sequential verdicts use it).

    Returns a :class:`~robtest.Measurement` with a Wilson interval; ``details`` holds the clean accuracy.

    >>> import torch
    >>> from robtest.data import digits_tensors
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> m = evaluate_accuracy(model, digits_tensors("test"), attack="fgsm", eps=0.1, device="cpu")
    >>> m.n
    540
    """
    spec = get_attack(attack) if attack is not None else None
    if spec is not None:
        spec.check_options(options)
    elif options:
        raise TypeError(f"evaluate_accuracy: options {sorted(options)} need an attack")
    lo, hi = check_bounds(bounds)
    dev = resolve_device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    clean_ok = adv_ok = seen = 0
    with on_device(model, dev), eval_mode(model):
        for xb, yb in iter_batches(data, batch_size=batch_size, samples=samples, seed=seed):
            check_batch(xb, yb, (lo, hi))
            x = xb.to(dev, non_blocking=True)
            y = yb.to(dev, non_blocking=True).long()
            logits = predict(model, x)
            check_logits(logits, x, y)
            ok = logits.argmax(dim=1) == y
            clean_ok += int(ok.sum())
            seen += y.shape[0]
            if spec is None or eps == 0:
                adv_ok += int(ok.sum())
            else:
                idx = ok.nonzero().squeeze(1)
                if idx.numel():
                    x_adv = spec.fn(model, x[idx], y[idx], eps=eps, bounds=(lo, hi), generator=gen, **options)
                    adv_ok += int((predict(model, x_adv).argmax(dim=1) == y[idx]).sum())
            if stop is not None and stop(adv_ok, seen):
                break
    low, high = proportion_ci(adv_ok, seen, confidence=confidence)
    return Measurement(
        name="accuracy",
        value=adv_ok / seen if seen else float("nan"),
        low=low,
        high=high,
        n=seen,
        confidence=confidence,
        context=describe_attack(attack, eps, options),
        details={"correct": adv_ok, "clean_accuracy": clean_ok / seen if seen else float("nan"),
                 "attack": attack or "none", "eps": float(eps)},
    )
