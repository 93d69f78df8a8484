"""How linear a model is along its attack direction: Cubuk et al. 2018's linear-response estimate of the smallest
fooling ε (C7) and Goodfellow et al. 2015's logits along the FGSM ray (G7, Fig. 4).

Both follow the *unclipped* ray ``x + ε·u``: they describe the model's response, not the box. Compare them with
measurements taken in a box wide enough not to bind (e.g. ``bounds=(-1, 2)`` for data in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.models import eval_mode
from robtest.stats import bootstrap_ci

__all__ = ["linear_response_eps", "logit_linearity", "logit_ray"]


def _check(x: object, y: object | None) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise InvalidArgument(f"x: expected a float tensor of shape (N, ...) but got {type(x).__name__}")
    if y is not None and (not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],)):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise InvalidArgument(f"y: expected labels of shape ({x.shape[0]},) but got {shape}")


def linear_response_eps(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                        y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cubuk et al. 2018, eq. (6): the L2-FGSM radius at which each prediction flips, to first order.

    With logits h, the cross-entropy gradient ``g = ∇x L = Jδ`` (labels ``y``, default the predicted class) and
    ``Γ = JᵀJδ/‖Jδ‖₂`` (the logits' rate of change along ``u = g/‖g‖₂``, one Jacobian-vector product), the
    logit gap to class j closes at ``ε̂_j = Δ1j / (Γj − Γ1)`` where class 1 is the top logit; returns
    ``(ε̂, j)`` with ``ε̂ = min_j ε̂_j`` over the classes gaining on the top one (``inf`` when none does) and
    the class j that gets there first. Exact for a linear model:

    >>> import torch
    >>> lin = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[1., 0.], [0., 1.]])); _ = lin.bias.zero_()
    >>> eps, j = linear_response_eps(lin, torch.tensor([[0.6, 0.2]]))
    >>> round(float(eps), 4), round(0.4 / 2 ** 0.5, 4), int(j)   # the gap 0.4 closes at rate √2
    (0.2828, 0.2828, 1)
    """
    _check(x, y)
    x = x.detach()
    with eval_mode(model), torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        h = model(xg)
        target = h.detach().argmax(1) if y is None else y.to(h.device).long()
        (g,) = torch.autograd.grad(F.cross_entropy(h, target, reduction="sum"), xg)
        norm = g.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *([1] * (x.dim() - 1)))
        _, gamma = torch.func.jvp(model, (x,), (g / norm,))
    h, gamma = h.detach(), gamma.detach()
    top = h.argmax(1, keepdim=True)
    gap = h.gather(1, top) - h
    rate = gamma - gamma.gather(1, top)
    eps = torch.where(rate > 0, gap / rate.clamp_min(1e-30), torch.full_like(gap, float("inf")))
    eps.scatter_(1, top, float("inf"))
    best, j = eps.min(dim=1)
    return best, j


def logit_ray(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, *, eps_max: float,
              points: int = 41) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits along the unclipped FGSM ray ``x + ε·sign(∇x J(x, y))`` for ε in ``[−eps_max, eps_max]``
    (``points`` values): returns ``(eps (P,), logits (N, P, C))``. Goodfellow et al. 2015, Fig. 4."""
    _check(x, y)
    if not eps_max > 0 or points < 3:
        raise InvalidArgument(f"eps_max, points: expected eps_max > 0 and points >= 3 but got {eps_max!r}, {points!r}")
    x = x.detach()
    with eval_mode(model), torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xg), y.long(), reduction="sum"), xg)
    eps = torch.linspace(-eps_max, eps_max, points, dtype=x.dtype, device=x.device)
    shape = (-1, *([1] * (x.dim() - 1)))
    with eval_mode(model), torch.no_grad():
        out = torch.stack([model(x + e * g.sign()) for e in eps.view(shape)], dim=1)
    return eps, out


def _longest_run(mask: torch.Tensor) -> torch.Tensor:
    """Per row of a boolean (N, P) mask, the length of its longest run of True."""
    run = torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
    best = run.clone()
    for k in range(mask.shape[1]):
        run = torch.where(mask[:, k], run + 1, torch.zeros_like(run))
        best = torch.maximum(best, run)
    return best


def logit_linearity(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
                    eps_max: float = 0.5, points: int = 41, confidence: float = 0.95) -> Measurement:
    """How linear the logits are along the FGSM ray (Goodfellow et al. 2015, G7, Fig. 4).

    For each point, each logit is fitted by a straight line in ε over ``[−eps_max, eps_max]`` (see
    :func:`logit_ray`); the point's R² is ``1 − Σ residual² / Σ (logit − its mean)²`` pooled over its logits.
    The value is the median R² over the points, with a seeded bootstrap interval. ``details``: ``r2`` per point;
    ``correct_fraction``, the fraction of the ray where the prediction is right (Goodfellow: "correct
    classifications occur only on a thin manifold"); ``wrong_hold``, the longest stretch of the ray a single
    wrong class holds, as a fraction of it.

    >>> import torch
    >>> lin = torch.nn.Linear(3, 4)
    >>> m = logit_linearity(lin, torch.rand(5, 3), torch.tensor([0, 1, 2, 3, 0]))
    >>> round(m.value, 6)   # a linear model's logits are exactly linear along any ray
    1.0
    """
    eps, out = logit_ray(model, x, y, eps_max=eps_max, points=points)
    e = eps.double() - eps.double().mean()
    z = out.double()
    zc = z - z.mean(dim=1, keepdim=True)
    slope = (zc * e.view(1, -1, 1)).sum(1, keepdim=True) / (e * e).sum()
    resid = zc - slope * e.view(1, -1, 1)
    total = (zc * zc).sum(dim=(1, 2)).clamp_min(1e-30)
    r2 = 1 - (resid * resid).sum(dim=(1, 2)) / total
    pred = out.argmax(2)
    yy = y.to(pred.device).view(-1, 1)
    correct = (pred == yy).float().mean(1)
    hold = torch.zeros(x.shape[0], dtype=torch.long, device=pred.device)
    for c in range(out.shape[2]):
        hold = torch.maximum(hold, _longest_run((pred == c) & (yy != c)))
    hold_frac = hold.double() / points
    r2c = r2.cpu()
    low, high = bootstrap_ci(r2c.numpy(), np.median, confidence=confidence, seed=0)
    return Measurement(
        "logit linearity R²", float(r2c.median()), low, high, n=x.shape[0], confidence=confidence,
        context=f"median R² of linear fits of the logits along the FGSM ray, ε in [−{eps_max:g}, {eps_max:g}]",
        details={"r2": r2c.tolist(), "correct_fraction": correct.cpu().tolist(),
                 "wrong_hold": hold_frac.cpu().tolist(), "eps_max": float(eps_max), "points": int(points),
                 # one input's logits along its ray, for the report's plot (Fig. 4 of the paper)
                 "ray": {"eps": [round(float(v), 6) for v in eps.cpu()], "label": int(y[0]),
                         "logits": [[round(float(v), 5) for v in row] for row in out[0].double().cpu()]}},
    )
