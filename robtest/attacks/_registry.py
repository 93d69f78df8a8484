"""A thin registry so markers and config files can name attacks."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from robtest.errors import InvalidArgument

# Arguments every attack takes from the driver, not from the user's marker/option dict.
_DRIVER_ARGS = {"model", "x", "y", "eps", "bounds", "generator"}


@dataclass(frozen=True)
class AttackSpec:
    name: str
    fn: Callable
    title: str

    @property
    def options(self) -> tuple[str, ...]:
        """Keyword options the user may set (``steps``, ``norm``...), from the function's signature."""
        params = inspect.signature(self.fn).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _DRIVER_ARGS)

    def check_options(self, options: dict, *, where: str = "") -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            prefix = f"{where}: " if where else ""
            raise InvalidArgument(
                f"{prefix}attack {self.name!r} does not take {', '.join(map(repr, unknown))}; "
                f"it accepts: {', '.join(self.options)}"
            )


_ATTACKS: dict[str, AttackSpec] = {}


def register_attack(name: str, *, title: str | None = None) -> Callable[[Callable], Callable]:
    """Register an attack function under ``name`` (used by markers: ``attack="pgd"``)."""

    def deco(fn: Callable) -> Callable:
        if name in _ATTACKS:
            raise ValueError(f"attack {name!r} is registered twice")
        _ATTACKS[name] = AttackSpec(name=name, fn=fn, title=title or name.upper())
        return fn

    return deco


def get_attack(name: str) -> AttackSpec:
    """Look an attack up by name; an unknown name lists the known ones."""
    if not isinstance(name, str) or name.lower() not in _ATTACKS:
        raise InvalidArgument(f"attack: expected one of {', '.join(sorted(_ATTACKS))} but got {name!r}")
    return _ATTACKS[name.lower()]


def available_attacks() -> tuple[str, ...]:
    return tuple(sorted(_ATTACKS))
