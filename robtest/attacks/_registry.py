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
    #: The keyword naming an inner attack whose options this one also takes (``transfer``'s ``attack``).
    forwards: str | None = None

    @property
    def options(self) -> tuple[str, ...]:
        """Keyword options the user may set (``steps``, ``norm``...), from the function's signature."""
        params = inspect.signature(self.fn).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _DRIVER_ARGS)

    def accepted(self, options: dict) -> tuple[str, ...]:
        """The options this attack takes given ``options``: its own, and the inner attack's it forwards to."""
        own = self.options
        if self.forwards is None:
            return own
        inner_name = options.get(self.forwards, inspect.signature(self.fn).parameters[self.forwards].default)
        inner = get_attack(inner_name)
        return tuple(dict.fromkeys((*own, *(o for o in inner.options if o != self.forwards))))

    def check_options(self, options: dict, *, where: str = "") -> None:
        accepted = self.accepted(options)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            prefix = f"{where}: " if where else ""
            raise InvalidArgument(
                f"{prefix}attack {self.name!r} does not take {', '.join(map(repr, unknown))}; "
                f"it accepts: {', '.join(accepted)}"
            )


_ATTACKS: dict[str, AttackSpec] = {}


def register_attack(name: str, *, title: str | None = None, forwards: str | None = None
                    ) -> Callable[[Callable], Callable]:
    """Register an attack function under ``name`` (used by markers: ``attack="pgd"``). ``forwards`` names the
    keyword that selects an inner attack whose options pass through ``**options`` (as ``transfer`` does)."""

    def deco(fn: Callable) -> Callable:
        if name in _ATTACKS:
            raise ValueError(f"attack {name!r} is registered twice")
        _ATTACKS[name] = AttackSpec(name=name, fn=fn, title=title or name.upper(), forwards=forwards)
        return fn

    return deco


def get_attack(name: str) -> AttackSpec:
    """Look an attack up by name; an unknown name lists the known ones."""
    if not isinstance(name, str) or name.lower() not in _ATTACKS:
        raise InvalidArgument(f"attack: expected one of {', '.join(sorted(_ATTACKS))} but got {name!r}")
    return _ATTACKS[name.lower()]


def available_attacks() -> tuple[str, ...]:
    return tuple(sorted(_ATTACKS))
