"""Helpers the properties share: argument checks, the data's input shape, batches on the device."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

import torch

from robtest.attacks._driver import check_batch, check_bounds, check_logits, first_forward
from robtest.data import iter_batches
from robtest.errors import InputError, InvalidArgument


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name}: expected an integer >= 1 but got {value!r}")
    return value


def number(name: str, value: object, *, low: float = -math.inf, high: float = math.inf, strict_low: bool = False
           ) -> float:
    # numbers.Real takes numpy scalars (np.float32(0.1)) too.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidArgument(f"{name}: expected a finite number but got {value!r}")
    ok = (value > low if strict_low else value >= low) and value <= high
    if not ok:
        lb = "(" if strict_low else "["
        raise InvalidArgument(f"{name}: expected a number in {lb}{low:g}, {high:g}] but got {value!r}")
    return float(value)


def choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if value not in options:
        raise InvalidArgument(f"{name}: expected one of {', '.join(options)} but got {value!r}")
    return str(value)


def pair(name: str, value: object) -> tuple[float, float]:
    """A pair (low, high) of finite numbers with low <= high."""
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name}: expected a pair (low, high) of numbers but got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise InvalidArgument(f"{name}: expected finite numbers with low <= high but got {value!r}")
    return lo, hi


def input_shape(data: object) -> tuple[int, ...]:
    """The shape of one input of ``data`` (without the batch dimension)."""
    for x, _ in iter_batches(data, batch_size=1, seed=None):
        return tuple(x.shape[1:])
    raise InputError("data: expected at least one sample but got an empty dataset")


def device_batches(model: object, data: object, *, batch_size: int, samples: int | None, seed: int,
                   bounds: tuple[float, float], device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Checked batches on ``device``; the first is also checked against the model's output and probed for
    randomness and gradients inside forward (:func:`robtest.indicators.probe_model`: a property measured on a
    randomised model is suspect)."""
    from robtest.indicators import probe_model

    lo, hi = check_bounds(bounds)
    first = True
    # The seeded subset, visited in the data's order: per-sample results line up with the user's data.
    for xb, yb in iter_batches(data, batch_size=batch_size, samples=samples, seed=seed, in_data_order=True):
        check_batch(xb, yb, (lo, hi))
        x, y = xb.to(device), yb.to(device).long()
        if first:
            check_logits(first_forward(model, x), x, y)  # type: ignore[arg-type]
            probe_model(model, x)  # type: ignore[arg-type]
            first = False
        yield x, y


def flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    return t.flatten(1).norm(p=p, dim=1)
