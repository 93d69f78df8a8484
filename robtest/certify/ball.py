"""The set a certificate covers: the ε-ball around each sample (L∞ or L2), intersected with the data box.

:meth:`Ball.min_linear` is where every linear bound meets the input set: the exact minimum of ``a·x`` over
the L∞ ball ∩ box (a box), and for L2 the larger of two sound lower bounds of the minimum over the ball ∩ box:
the box's minimum, and the Lagrangian dual of the ball constraint with the box kept (any multiplier gives a
lower bound; the best one is found in closed form after sorting the coordinates' breakpoints).
"""

from __future__ import annotations

import torch

__all__ = ["Ball", "NORMS"]

NORMS = ("linf", "l2")

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
        # min over δ in [dl, du] with ‖δ‖ ≤ ε of a·δ  ≥  g(μ) = Σ min_δi (a_i δ_i + μ δ_i²) − μ ε²  for every μ > 0
        # (weak duality), with δ_i(μ) = clip(−a_i / 2μ, dl_i, du_i). Any μ gives a sound bound; the best one makes
        # ‖δ(μ)‖ = ε. Coordinate i sits at its box edge b_i (du_i or −dl_i, the side a_i pushes to) while
        # μ < μ_i = |a_i| / 2b_i, so ‖δ(μ)‖² = Σ_{μ_i > μ} b_i² + Σ_{μ_i ≤ μ} a_i² / 4μ²: with the μ_i sorted, each
        # interval between two of them has a closed-form root, and exactly one root falls in its interval.
        x0 = self.x0.flatten(1)[:, None]
        dl, du = self.lower.flatten(1)[:, None] - x0, self.upper.flatten(1)[:, None] - x0
        eps2 = (self.eps * self.eps).view(-1, 1, 1)
        edge = torch.where(a < 0, du, -dl).expand_as(a)  # how far coordinate i can go the way a_i pushes
        a2, b2 = a * a, edge * edge
        mu_i = torch.where(edge > 0, a.abs() / (2 * edge).clamp(min=torch.finfo(a.dtype).tiny),
                           torch.full_like(a, torch.inf))
        mu_sorted, order = mu_i.sort(dim=2)
        a2s, b2s = a2.gather(2, order), b2.gather(2, order)
        zero = a.new_zeros(*a.shape[:2], 1)
        free = torch.cat([zero, a2s.cumsum(2)], 2)  # Σ a_i² of the coordinates off their edge (k of them)
        fixed = b2s.sum(2, keepdim=True) - torch.cat([zero, b2s.cumsum(2)], 2)  # Σ b_i² of those on it
        room = eps2 - fixed
        tiny = torch.finfo(a.dtype).tiny
        # clamped before the root so that α-CROWN's gradients stay finite where a candidate is 0
        mu_k = (free / (4 * room.clamp(min=tiny))).clamp(min=tiny).sqrt()
        left = torch.cat([zero, mu_sorted], 2)
        right = torch.cat([mu_sorted, torch.full_like(zero, torch.inf)], 2)
        valid = (room > 0) & (mu_k >= left) & (mu_k <= right) & (free > 0)
        k = valid.to(torch.int8).argmax(2, keepdim=True)
        mu = mu_k.gather(2, k)
        fallback = a2.sum(2, keepdim=True).clamp(min=tiny).sqrt() / (2 * self.eps.view(-1, 1, 1)).clamp(min=tiny)
        mu = torch.where(valid.any(2, keepdim=True), mu, fallback).clamp(min=tiny)
        d = (-a / (2 * mu)).clamp(min=dl).clamp(max=du)
        g = (a * d + mu * d * d).sum(2) - mu[..., 0] * eps2[..., 0] + (a * x0).sum(2)
        usable = (self.eps.view(-1, 1) > 0) & torch.isfinite(g)
        return torch.where(usable, g, torch.full_like(g, -torch.inf))
