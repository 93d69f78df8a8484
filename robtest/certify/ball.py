"""The set a certificate covers: the ε-ball around each sample (L∞ or L2), intersected with the data box.

:meth:`Ball.min_linear` is where every linear bound meets the input set: the exact minimum of ``a·x`` over
the L∞ ball ∩ box (a box), and for L2 the larger of two sound lower bounds of the minimum over the ball ∩ box:
the box's minimum, and the Lagrangian dual of the ball constraint with the box kept (any multiplier gives a
lower bound; a bisection finds the best).
"""

from __future__ import annotations

import torch

__all__ = ["Ball", "NORMS"]

NORMS = ("linf", "l2")

#: bisection steps of the L2 multiplier (log scale over 12 decades: the last bracket is within 1e-10 of the best)
L2_STEPS = 40


class Ball:
    """The perturbation set of a batch: ``{x : ‖x − x0‖ ≤ ε} ∩ [lo, hi]``, one ε per sample.

    ``x0`` (B, ...) and ``eps`` (B,) in the working dtype and device; ``lower``/``upper`` is the smallest box
    that holds the set (the set itself for L∞).

    >>> import torch
    >>> ball = Ball(torch.tensor([[0.5, 0.95]]), torch.tensor([0.1]), "linf", (0.0, 1.0))
    >>> ball.upper
    tensor([[0.6000, 1.0000]])
    >>> ball.min_linear(torch.tensor([[[1.0, -1.0]]]))  # min of x0 − x1 over the box: 0.4 − 1.0
    tensor([[-0.6000]])
    """

    def __init__(self, x0: torch.Tensor, eps: torch.Tensor, norm: str, bounds: tuple[float, float]) -> None:
        self.x0, self.eps, self.norm = x0, eps, norm
        e = eps.view(-1, *([1] * (x0.dim() - 1)))
        self.lower = (x0 - e).clamp(min=bounds[0])
        self.upper = (x0 + e).clamp(max=bounds[1])

    def __len__(self) -> int:
        return self.x0.shape[0]

    def box(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lower, self.upper

    def min_linear(self, a: torch.Tensor) -> torch.Tensor:
        """A lower bound of ``min a·x`` over the set, per sample and row: ``a`` (B, K, ...) → (B, K)."""
        a = a.flatten(2)
        lo, hi = self.lower.flatten(1)[:, None], self.upper.flatten(1)[:, None]
        box = (a.clamp(min=0) * lo + a.clamp(max=0) * hi).sum(2)
        if self.norm == "linf":
            return box
        return torch.maximum(box, self._l2_dual(a))

    def _l2_dual(self, a: torch.Tensor) -> torch.Tensor:
        # min over δ in [dl, du] with ‖δ‖ ≤ ε of a·δ  ≥  g(μ) = Σ min_δi (a_i δ_i + μ δ_i²) − μ ε²  for every μ ≥ 0;
        # δ_i(μ) = clip(−a_i / 2μ, dl_i, du_i). g is concave, its slope ‖δ(μ)‖² − ε² falls with μ, and the best μ
        # lies below μ* = ‖a‖ / 2ε (the ball's own optimum); bisect log μ and keep the best value met.
        x0 = self.x0.flatten(1)[:, None]
        dl, du = self.lower.flatten(1)[:, None] - x0, self.upper.flatten(1)[:, None] - x0
        eps = self.eps.view(-1, 1)
        norm_a = a.norm(dim=2)
        live = (eps > 0) & (norm_a > 0)
        mu_star = torch.where(live, norm_a / (2 * eps.clamp(min=torch.finfo(a.dtype).tiny)), torch.ones_like(norm_a))
        lo_t = torch.full_like(norm_a, -12.0 * 2.302585092994046)  # log(1e-12)
        hi_t = torch.zeros_like(norm_a)
        best = torch.full_like(norm_a, -torch.inf)
        for _ in range(L2_STEPS):
            t = (lo_t + hi_t) / 2
            mu = (mu_star * t.exp())[..., None]
            d = (-a / (2 * mu)).clamp(min=dl).clamp(max=du)
            g = (a * d + mu * d * d).sum(2) - mu[..., 0] * eps * eps
            best = torch.maximum(best, g)
            outside = (d * d).sum(2) > eps * eps  # the slope is positive: the best μ is larger
            lo_t = torch.where(outside, t, lo_t)
            hi_t = torch.where(outside, hi_t, t)
        best = best + (a * x0).sum(2)
        return torch.where(live, best, torch.full_like(best, -torch.inf))
