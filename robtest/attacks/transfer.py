"""Transfer: adversarial examples crafted on a surrogate model, evaluated on the model under test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robtest.attacks._driver import Bounds
from robtest.attacks._registry import get_attack, register_attack
from robtest.errors import InvalidArgument
from robtest.rng import SampleRNG

__all__ = ["transfer"]


@register_attack("transfer", title="transfer", forwards="surrogate_attack")
def transfer(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    surrogate: Callable[[torch.Tensor], torch.Tensor] | None = None,
    surrogate_attack: str = "pgd",
    norm: str = "linf",
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
    **attack_options: Any,
) -> torch.Tensor:
    """Transfer attack (Szegedy et al. 2014; Goodfellow et al. 2015, G3; Zantedeschi et al. 2017, Table 1):
    run ``surrogate_attack`` (any registered attack, with its ``attack_options``) on ``surrogate`` and return
    its examples.

    ``model`` is never called or differentiated: the examples are judged on it by the evaluation's separate
    prediction, so ``accuracy_floor(attack="transfer", surrogate=other, eps=...)`` measures how well examples
    made on ``other`` carry over. The inner attack runs through the same driver as always (input checks, eval
    mode restored, clipping, the ε-ball check), on ``surrogate``; ``surrogate`` is moved to x's device for the
    attack and back to where it was.

    Args:
        model: the model under test (unused here; the evaluation predicts with it).
        x: inputs (N, ...) in ``bounds``; y: labels (N,).
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).
        surrogate: the model the examples are crafted on (logits (N, C) for the same classes).
        surrogate_attack: the registered attack run on the surrogate (default ``"pgd"``); its options
            (``steps``, ``loss``...) pass through. Not ``attack``: a property's ``attack`` is ``"transfer"``.

    Returns:
        Adversarial examples (N, ...) in the box and the ε-ball.

    With the model itself as the surrogate, transfer is the underlying attack:

    >>> import torch
    >>> from robtest.attacks import fgsm
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(4, 3), torch.tensor([0, 1, 0, 1])
    >>> x_adv = transfer(model, x, y, eps=0.1, surrogate=model, surrogate_attack="fgsm")
    >>> bool(torch.equal(x_adv, fgsm(model, x, y, eps=0.1)))
    True
    """
    if surrogate is None:
        raise InvalidArgument("surrogate: the transfer attack needs the model to craft the examples on; pass "
                              "surrogate=<model> (in a marker: the name of a fixture that returns it)")
    if isinstance(surrogate, str):
        raise InvalidArgument(f"surrogate: expected a model but got the string {surrogate!r}; a fixture name is "
                              "resolved only in a property marker, so pass the model itself here")
    if not callable(surrogate):
        raise InvalidArgument(f"surrogate: expected a torch.nn.Module (or callable) but got {type(surrogate).__name__}")
    spec = get_attack(surrogate_attack)
    if spec.name == "transfer":
        raise InvalidArgument("surrogate_attack: expected an attack to run on the surrogate but got 'transfer'")
    spec.check_options(attack_options, where=f"transfer with surrogate_attack={spec.name!r}")
    from robtest.models import on_device

    with on_device(surrogate, x.device):
        return spec.fn(surrogate, x, y, eps=eps, norm=norm, bounds=bounds, generator=generator, **attack_options)
