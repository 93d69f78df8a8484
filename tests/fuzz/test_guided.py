"""Guided fuzzing: a loss-gradient step seeds the search with directions random sign patterns miss."""

from __future__ import annotations

import torch

from robtest.fuzz import fuzz
from robtest.strategies import Direction

from ._models import MeanThreshold


def _needle(eps: float):
    """A linear two-class model on 8×8 images that flips only when 41+ of the 64 pixels move by ε against w:
    a random sign pattern on all 64 does that with probability below 1e-6; the gradient sign does it at once."""
    g = torch.Generator().manual_seed(0)
    w = (torch.randint(0, 2, (64,), generator=g) * 2 - 1).float()
    margin = 40 * eps
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with torch.no_grad():
        lin[1].weight.copy_(torch.stack([w, torch.zeros(64)]))
        lin[1].bias.copy_(torch.tensor([margin - 0.5 * float(w.sum()), 0.0]))
    return lin.eval(), w, margin


def test_guided_finds_what_random_patterns_miss():
    eps = 0.05
    model, w, margin = _needle(eps)
    x = torch.full((1, 1, 8, 8), 0.5)
    y = torch.zeros(1, dtype=torch.long)
    plain = fuzz(model, x, y, "linf_perturbations", options={"eps": eps}, database=None, max_examples=100)
    assert plain.passed
    guided = fuzz(model, x, y, "linf_perturbations", options={"eps": eps}, guided=True, database=None,
                  max_examples=100)
    assert not guided.passed
    d = guided.minimal
    assert isinstance(d, Direction) and d.eps <= eps
    step = d.apply(x) - x
    assert float(step.abs().max()) <= eps + 1e-6
    assert float(-(w * step.flatten()).sum()) > margin  # it does cross the boundary...
    # ...and it shrank: a step with one grid level less, or one pixel fewer, no longer does
    assert d.eps * min(d.pixels, 64) <= margin + eps + 1e-6
    assert "along the loss gradient" in guided.message() and "(guided)" in guided.message()


def test_guided_target_on_other_strategies_still_shrinks(constant_images):
    r = fuzz(MeanThreshold(0.4), constant_images, torch.zeros(6, dtype=torch.long), "offsets", guided=True,
             database=None, max_examples=50)
    assert not r.passed and abs(r.minimal.offset - 0.1) <= 1 / 255 + 1e-9
