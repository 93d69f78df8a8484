"""Zantedeschi, Nicolae & Rawat, *Efficient Defenses Against Adversarial Attacks*, AISec 2017: the models.

A small CNN (two 3×3 conv layers, width 16) on the --robust-data training split, trained five ways:
``plain``; ``brelu`` (bounded ReLU, t=1); ``gda`` (Gaussian data augmentation: 10 noisy copies per image,
σ=0.3, fresh noise every epoch); ``gda_brelu`` (both, the paper's proposed defence); ``smooth`` (label
smoothing 0.1). The augmented models see 11× the images per epoch, so they train for fewer epochs.
"""

from __future__ import annotations

import pytest

RECIPES = {
    "plain": (False, {"epochs": 30}),
    "brelu": (True, {"epochs": 30}),
    "gda": (False, {"epochs": 10, "noise_sigma": 0.3, "noise_copies": 10}),
    "gda_brelu": (True, {"epochs": 10, "noise_sigma": 0.3, "noise_copies": 10}),
    "smooth": (False, {"epochs": 30, "label_smoothing": 0.1}),
}


@pytest.fixture(scope="session")
def cnn(zoo, train_data):
    """``cnn(name)``: the small CNN trained with recipe ``name`` (see the module docstring); ``seed`` may
    override --robust-seed (the black-box surrogate is a second plain model)."""
    from torch import nn

    from robtest.zoo import BoundedReLU, small_cnn

    x, y = train_data

    def get(name, seed=None):
        bounded, recipe = RECIPES[name]
        act = BoundedReLU if bounded else nn.ReLU
        extra = {} if seed is None else {"seed": seed}
        return zoo(f"zcnn16-{name}", lambda: small_cnn(x.shape[1], int(y.max()) + 1, width=16, activation=act),
                   lr=2e-3, **recipe, **extra)

    return get
