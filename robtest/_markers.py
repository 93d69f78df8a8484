"""The property markers' keyword schema, in plain Python so the plugin can check markers without torch."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PropertySpec", "PROPERTIES", "marker_errors"]

COMMON = ("samples", "batch_size", "seed", "confidence", "rule")


@dataclass(frozen=True)
class PropertySpec:
    name: str
    threshold: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    summary: str
    #: Names of keyword arguments that are forwarded to the attack and checked against its signature.
    attack_options: bool = False
    comparison: str = ">="
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.required, *self.optional, *COMMON)))


PROPERTIES: dict[str, PropertySpec] = {
    "accuracy_floor": PropertySpec(
        name="accuracy_floor",
        threshold="floor",
        required=("eps", "floor"),
        optional=("attack",),
        summary="accuracy under an attack at radius eps is at least floor",
        attack_options=True,
    ),
}


def marker_errors(name: str, args: tuple, kwargs: dict) -> list[str]:
    """What is wrong with ``@pytest.mark.<name>(*args, **kwargs)``; empty when nothing is."""
    spec = PROPERTIES[name]
    errs = []
    if args:
        errs.append(f"@{name} takes keyword arguments only (e.g. {spec.threshold}=...), got positional {args!r}")
    missing = [k for k in spec.required if k not in kwargs]
    if missing:
        errs.append(f"@{name} needs {', '.join(missing)}; it accepts: {', '.join(spec.accepted)}")
    if not spec.attack_options:
        unknown = sorted(set(kwargs) - set(spec.accepted))
        if unknown:
            errs.append(f"@{name} does not take {', '.join(unknown)}; it accepts: {', '.join(spec.accepted)}")
    return errs
