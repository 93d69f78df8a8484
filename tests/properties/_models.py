"""Models whose answers are known by construction (no training: each is built in microseconds)."""

from __future__ import annotations

import torch
from torch import nn

from robtest.data import digits_tensors


def class_means(classes: int = 10) -> torch.Tensor:
    x, y = digits_tensors("train")
    return torch.stack([x[y == c].flatten(1).mean(0) for c in range(classes)])


def template_linear(scale: float = 20.0) -> nn.Module:
    """Softmax regression with the class means as templates: logits = scale·(μ_c·x − ½‖μ_c‖²)."""
    mu = class_means()
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        m[1].weight.copy_(scale * mu)
        m[1].bias.copy_(-0.5 * scale * (mu ** 2).sum(1))
    return m.eval()


class RBF(nn.Module):
    """Goodfellow et al.'s RBF contrast: logit_c = scale·exp(−β‖x − μ_c‖²), near 0 far from every centre."""

    def __init__(self, beta: float = 0.5, scale: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mu", class_means())
        self.beta, self.scale = beta, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = ((x.flatten(1)[:, None, :] - self.mu[None]) ** 2).sum(-1)
        return self.scale * torch.exp(-self.beta * d2)
