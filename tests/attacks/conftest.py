"""A small ReLU network whose exact robust accuracy is known (MILP), shared by the APGD, Square and ensemble
tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

EPS = 0.1
POINTS = 50


@dataclass(frozen=True)
class Exact:
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    eps: float
    robust: np.ndarray  # exact, per point (MILP)

    def fooled(self, x_adv: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return (self.model(x_adv).argmax(1) != self.y).numpy()

    def accuracy(self, x_adv: torch.Tensor) -> float:
        return float(1 - self.fooled(x_adv).mean())


@pytest.fixture(scope="session")
def exact_mlp() -> Exact:
    """64→16→10 ReLU MLP trained on the digits in about a second; the first POINTS test digits it classifies
    correctly, and which of them are exactly robust at L∞ ε = EPS."""
    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier
    from tests.attacks.exact import exact_robust

    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(16,)), x, y, epochs=15, lr=3e-3, seed=0, reinit=True)
    for p in model.parameters():
        p.requires_grad_(False)
    xt, yt = digits_tensors("test")
    with torch.no_grad():
        ok = model(xt).argmax(1) == yt
    xt, yt = xt[ok][:POINTS], yt[ok][:POINTS]
    robust, ties = exact_robust(model, xt, yt, EPS)
    assert ties == 0, "a point too close to call in float32: pick another ε"
    return Exact(model, xt, yt, EPS, robust)
