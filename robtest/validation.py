"""Argument checks shared by the whole package: each returns the value (converted where that helps) or raises
:class:`~robtest.errors.InvalidArgument` saying ``"<name>: expected ... but got ..."``.

This module imports only the standard library and :mod:`robtest.errors`, so every floor of the package (the
plugin included) can use it.

>>> integer("steps", 10), number("eps", 0.1, low=0), pair("exponent", [1, 2])
(10, 0.1, (1.0, 2.0))
>>> integer("steps", 0)
Traceback (most recent call last):
...
robtest.errors.InvalidArgument: steps: expected an integer >= 1 but got 0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from robtest.errors import InvalidArgument

__all__ = ["choice", "integer", "number", "pair", "positive_int"]


def integer(name: str, value: object, *, low: int = 1, hint: str = "", optional: bool = False) -> int:
    """An integer ``>= low`` (never a bool); ``optional`` lets None through. ``hint`` follows the bound in the
    message (``" (draws per gradient)"``)."""
    if optional and value is None:
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidArgument(f"{name}: expected an integer >= {low}{hint}{' or None' if optional else ''} but got "
                              f"{value!r}")
    return value


def positive_int(name: str, value: object) -> int:
    """An integer >= 1."""
    return integer(name, value)


def number(name: str, value: object, *, low: float = -math.inf, high: float = math.inf, strict_low: bool = False,
           expected: str | None = None, optional: bool = False) -> float:
    """A finite real number (numpy scalars too) in ``[low, high]`` (``(low, high]`` with ``strict_low``);
    ``expected`` replaces the range's wording in the message (``"a fraction in (0, 1]"``)."""
    if optional and value is None:
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidArgument(f"{name}: expected a finite number{' or None' if optional else ''} but got {value!r}")
    ok = (value > low if strict_low else value >= low) and value <= high
    if not ok:
        lb = "(" if strict_low else "["
        what = expected or f"a number in {lb}{low:g}, {high:g}]"
        raise InvalidArgument(f"{name}: expected {what} but got {value!r}")
    return float(value)


def choice(name: str, value: object, options: Sequence[str]) -> str:
    """One of ``options``."""
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
