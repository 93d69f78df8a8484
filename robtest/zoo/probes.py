"""Measurements the papers make on a model that are not robustness properties of their own.

Logit gaps (Cubuk et al.'s Δ1j), the one-step and iterated fooling-image ascents (Goodfellow et al.'s G8,
Galloway et al.'s W2) and the confidence a model gives: these run the model in eval mode and restore its mode.
:func:`switched_off_filters` (Galloway et al.'s W4) reads a layer's weights only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robtest.attacks._driver import check_device
from robtest.models import eval_mode

__all__ = ["confidence", "fooling_images", "logit_gaps", "switched_off_filters"]


def confidence(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's confidence per input: max softmax probability, or for a model with ``probabilities`` (the
    one-vs-rest RBF network) its largest unnormalised class probability.

    >>> import torch
    >>> confidence(torch.nn.Identity(), torch.tensor([[0.0, 0.0]])).tolist()
    [0.5]
    """
    check_device(model, x)
    with torch.no_grad(), eval_mode(model):
        if hasattr(model, "probabilities"):
            return model.probabilities(x).amax(dim=1)
        return F.softmax(model(x), dim=1).amax(dim=1)


def logit_gaps(model: nn.Module, x: torch.Tensor, j: int = 2) -> torch.Tensor:
    """Δ1j = top-1 logit minus the j-th largest logit, per input (Cubuk et al. 2018, C4).

    >>> import torch
    >>> logit_gaps(torch.nn.Identity(), torch.tensor([[3.0, 1.0, 2.5]])).tolist()
    [0.5]
    """
    check_device(model, x)
    with torch.no_grad(), eval_mode(model):
        top = model(x).topk(j, dim=1).values
    return top[:, 0] - top[:, j - 1]


def fooling_images(model: nn.Module, start: torch.Tensor, targets: torch.Tensor, *, steps: int = 100,
                   step_size: float = 0.01, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Gradient-sign ascent of ``log p(target | x)`` from ``start`` (Nguyen et al. 2015's fooling images as in
    Galloway et al. 2018, W2: 100 steps of 0.01 from N(0.5, 0.1) noise; one step is Goodfellow et al.'s G8).

    The images are unconstrained except for the box: they need not look like anything.
    """
    lo, hi = bounds
    check_device(model, start, "start")
    x = start.detach().clone()
    targets = targets.to(x.device)
    with eval_mode(model):
        for _ in range(steps):
            x.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(x), targets, reduction="sum"), x)
            x = (x.detach() - step_size * g.sign()).clamp(lo, hi)
    return x.detach()


def switched_off_filters(layer: nn.Module | torch.Tensor, *, rel_norm: float = 0.1) -> torch.Tensor:
    """Which filters of a layer weight decay has switched off (Galloway et al. 2018, W4: "dropping the majority
    of filters entirely"): filter ``i`` is off when ``‖W_i‖₂ < rel_norm · max_j ‖W_j‖₂``.

    ``W_i`` is output channel ``i`` of the weight (a conv layer's kernel ``W[i]`` over its input channels and
    taps, a linear layer's row); the bias is not part of it. ``layer`` is the module or its weight tensor
    (out_channels, ...). Returns a bool tensor (out_channels,); ``.float().mean()`` is the fraction switched off.
    The norm is relative to the layer's largest filter, so a layer decayed evenly switches nothing off.

    >>> import torch
    >>> w = torch.tensor([[3.0, 4.0], [0.3, 0.0], [0.6, 0.0]])  # filter norms 5, 0.3, 0.6
    >>> switched_off_filters(w).tolist()
    [False, True, False]
    """
    if not 0 < rel_norm < 1:
        raise ValueError(f"rel_norm: expected a fraction of the largest filter's norm in (0, 1) but got {rel_norm!r}")
    w = layer if isinstance(layer, torch.Tensor) else getattr(layer, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() < 2:
        shape = None if w is None else tuple(w.shape)
        raise ValueError(f"layer: expected a layer with a weight of shape (out_channels, ...) but got "
                         f"{type(layer).__name__} with weight shape {shape}")
    norms = w.detach().flatten(1).norm(dim=1)
    return norms < rel_norm * norms.max()
