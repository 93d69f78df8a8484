"""Tiny models whose answers are known."""

from __future__ import annotations

import torch
from torch import nn


def linear_model(in_features: int = 16, classes: int = 3, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(in_features, classes))
    with torch.no_grad():
        m[1].weight.copy_(torch.randn(classes, in_features, generator=g))
        m[1].bias.copy_(torch.randn(classes, generator=g) * 0.1)
    return m.eval()


def one_torch_thread():
    """A generator for an autouse fixture: one torch thread while a package of tiny-model tests runs (many times
    faster than several on a shared CPU), the caller's thread count given back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
