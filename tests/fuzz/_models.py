"""Models that break at a known perturbation, and models invariant by construction."""

from __future__ import annotations

import torch
from torch import nn


class MeanThreshold(nn.Module):
    """Class 1 when the mean brightness is above ``t`` (``below=False``) or below it (``below=True``)."""

    def __init__(self, t: float, below: bool = False) -> None:
        super().__init__()
        self.t, self.sign = t, -1.0 if below else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sign * (x.mean((1, 2, 3)) - self.t) * 100
        return torch.stack([-s, s], 1)


class PixelWatch(nn.Module):
    """Class 1 when pixel (row, col) moves more than ``tol`` away from ``base``."""

    def __init__(self, row: int, col: int, base: float, tol: float) -> None:
        super().__init__()
        self.row, self.col, self.base, self.tol = row, col, base, tol

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = ((x[:, 0, self.row, self.col] - self.base).abs() - self.tol) * 100
        return torch.stack([-s, s], 1)


class TemplateDistance(nn.Module):
    """Class 1 when the image is farther than ``tau`` (L2) from ``template``."""

    def __init__(self, template: torch.Tensor, tau: float) -> None:
        super().__init__()
        self.register_buffer("template", template)
        self.tau = tau

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = ((x - self.template).flatten(1).norm(dim=1) - self.tau) * 100
        return torch.stack([-s, s], 1)


class CentredLinear(nn.Module):
    """A linear model of ``x - mean(x)``: a constant offset cannot change it (while nothing clips)."""

    def __init__(self, d: int, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, d, generator=g), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1)
        return (z - z.mean(1, keepdim=True)) @ self.w.T
