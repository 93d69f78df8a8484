"""Seeded training of the reference models (plain cross-entropy; adversarial recipes build on it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["train_classifier", "flush_denormal_enabled"]


def flush_denormal_enabled() -> bool:
    """Whether denormal floats are flushed to zero now (torch has no getter: a denormal product tells)."""
    return bool((torch.tensor([1e-38]) * 0.01).item() == 0)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 30, lr: float = 1e-3,
                     batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0) -> nn.Module:
    """Train ``model`` with Adam on ``(x, y)`` for ``epochs``; same seed, same weights. Returns it in eval mode.

    The global RNG is left as it was (training draws from a forked generator state).
    """
    prev_denormal = flush_denormal_enabled()
    torch.set_flush_denormal(True)  # denormal floats slow CPU training many-fold
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
            g = torch.Generator().manual_seed(seed)
            model.train()
            n = x.shape[0]
            for _ in range(epochs):
                perm = torch.randperm(n, generator=g)
                for i in range(0, n, batch_size):
                    idx = perm[i:i + batch_size]
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x[idx]), y[idx]).backward()
                    opt.step()
    finally:
        torch.set_flush_denormal(prev_denormal)
    for p in model.parameters():
        p.grad = None
    return model.eval()
