"""The property markers' keyword schema, in plain Python so the plugin can check markers without torch."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PropertySpec", "PROPERTIES", "marker_errors"]

COMMON = ("samples", "batch_size", "seed", "confidence", "rule", "allow", "tolerance")


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
        optional=("attack", "sequential", "max_seconds", "max_samples"),
        summary="accuracy under an attack at radius eps is at least floor",
        attack_options=True,
    ),
    "confidence_ceiling": PropertySpec(
        name="confidence_ceiling",
        threshold="ceiling",
        required=("ceiling",),
        optional=("source", "steps", "step_size", "classes", "std", "statistic", "sequential", "max_seconds",
                  "max_samples"),
        summary="the model's mean (or max) softmax confidence on fooling images / rubbish inputs is at most ceiling",
        comparison="<=",
    ),
    "offset_invariance": PropertySpec(
        name="offset_invariance",
        threshold="max_drop",
        required=("max_drop",),
        optional=("offsets", "grid", "tol"),
        summary="adding a constant to every pixel (then clipping) costs at most max_drop accuracy",
        comparison="<=",
    ),
    "power_law": PropertySpec(
        name="power_law",
        threshold="exponent",
        required=("exponent",),
        optional=("attack", "eps", "points", "min_errors", "max_error", "norm", "steps", "step_size", "restarts",
                  "loss"),
        summary="adversarial error at small eps grows as A*eps^B with B inside exponent=(lo, hi)",
        comparison="in",
    ),
    "lipschitz": PropertySpec(
        name="lipschitz",
        threshold="max",
        required=("max",),
        optional=("estimate", "radius", "steps"),
        summary="the local Lipschitz constant (or loss sensitivity, or global bound) is at most max",
        comparison="<=",
    ),
    "min_perturbation": PropertySpec(
        name="min_perturbation",
        threshold="floor",
        required=("floor",),
        optional=("attack", "norm", "eps_max", "bisections", "steps", "step_size", "restarts", "loss"),
        summary="empirical robustness (mean minimal perturbation / input norm) is at least floor",
    ),
    "fuzz": PropertySpec(
        name="fuzz",
        threshold="max_flips",
        required=("strategy",),
        optional=("max_examples", "budget", "max_flips", "guided"),
        summary="hypothesis finds no perturbation from strategy that changes more than max_flips predictions "
                "(default 0); the strategy's own options (eps, max_offset...) pass through",
        attack_options=True,  # the strategy's options are checked against its signature
        comparison="<=",
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
