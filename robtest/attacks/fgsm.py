"""One-step attacks: FGSM (L∞ and L2), the least-likely-class step (step-l.l.) and Random+FGSM."""

from __future__ import annotations

import torch

from robtest.attacks._driver import Bounds, loss_grad, run_attack
from robtest.attacks._norms import Norm
from robtest.attacks._registry import register_attack
from robtest.rng import SampleRNG, as_rng

__all__ = ["fgsm", "step_ll", "rfgsm"]


def _fgsm_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, targeted):
    _, g = loss_grad(f, x, y, loss, targeted, check_masking=True)
    return x + eps * norm.direction(g)


@register_attack("fgsm", title="FGSM")
def fgsm(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    loss: str = "ce",
    targeted: bool = False,
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """Fast gradient (sign) method, Goodfellow, Shlens & Szegedy, ICLR 2015: ``x + ε·sign(∇x J(x, y))``.

    With ``norm="l2"`` the step is ``ε·∇/‖∇‖₂`` (the L2 variant of Cubuk et al. 2018). With
    ``targeted=True``, ``y`` holds target classes and the step descends the loss toward them.

    Args:
        model: maps a batch (N, ...) in ``bounds`` to logits (N, C).
        x: inputs (N, ...) inside ``bounds``; y: integer labels (N,).
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).

    Returns:
        Adversarial examples (N, ...) clipped to ``bounds``, each within ε of ``x``.

    For a linear model FGSM is the exact worst case in the L∞ ball:

    >>> import torch
    >>> model = torch.nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad(): _ = model.weight.copy_(torch.tensor([[1., -2., 0.5], [0., 0., 0.]]))
    >>> x = torch.full((1, 3), 0.5)
    >>> fgsm(model, x, torch.tensor([0]), eps=0.1)
    tensor([[0.4000, 0.6000, 0.4000]])
    """
    return run_attack(_fgsm_core, model, x, y, eps=eps, norm=norm, bounds=bounds, loss=loss, targeted=targeted)


def _step_ll_core(f, x, y, *, eps, norm: Norm, lo, hi, loss):
    x = x.detach().requires_grad_(True)
    logits = f(x)
    y_ll = logits.detach().argmin(dim=1)
    # Descend the loss of the least-likely class (one forward serves both the argmin and the gradient).
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, y_ll, reduction="sum"), x)
    return x.detach() - eps * norm.direction(g)


@register_attack("step_ll", title="step-l.l.")
def step_ll(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """One-step least-likely-class attack (Kurakin et al. 2017; Cubuk et al. 2018, C2):
    ``x − ε·sign(∇x J(x, y_ll))`` with ``y_ll`` the class the model finds least likely at ``x``.

    ``y`` is only used for input checks; the target comes from the model.
    """
    return run_attack(_step_ll_core, model, x, y, eps=eps, norm=norm, bounds=bounds)


def _rfgsm_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, alpha, generator):
    a = eps * alpha
    noise = as_rng(generator).randn(x.shape, device=x.device, dtype=x.dtype)
    x1 = (x + a * norm.direction(noise)).clamp(lo, hi)
    _, g = loss_grad(f, x1, y, loss, check_masking=True)
    return x + norm.project(x1 + (eps - a) * norm.direction(g) - x, eps)


@register_attack("rfgsm", title="Random+FGSM")
def rfgsm(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    alpha: float = 0.5,
    norm: str = "linf",
    loss: str = "ce",
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """Random+FGSM (Tramèr et al. 2018; used by Zantedeschi et al. 2017): a random step of size ``alpha·ε``
    along a random sign pattern, then an FGSM step of ``(1 − alpha)·ε`` from there."""
    from robtest.errors import InvalidArgument

    if not 0 <= alpha <= 1:
        raise InvalidArgument(f"alpha: expected a fraction of ε in [0, 1] but got {alpha!r}")
    return run_attack(
        _rfgsm_core, model, x, y, eps=eps, norm=norm, bounds=bounds, loss=loss, alpha=alpha, generator=generator
    )
