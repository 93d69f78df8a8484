"""Cubuk, Zoph, Schoenholz & Le, *Intriguing Properties of Adversarial Examples*, ICLR 2018 workshop: models.

A 256-256 ReLU MLP (the paper's MNIST fully connected net, smaller), the same MLP trained with the entropy
penalty ``CE + λ·H(p)`` (λ=2: λ ≥ 5 collapses training on the digits), softmax regression (C3's linear model)
and an MLP trained on shuffled labels (C3), on the --robust-data training split, seeded with --robust-seed.
"""

from __future__ import annotations

import pytest

from suites._helpers import task_shape


@pytest.fixture(scope="session")
def entropy_mlp_model(zoo, train_data):
    from robtest.zoo import mlp

    shape, k = task_shape(train_data)
    return zoo("mlp256-entropy2", lambda: mlp(shape, k), epochs=50, lr=1e-3, entropy_penalty=2.0)


@pytest.fixture(scope="session")
def shuffled_labels(train_data, robust_seed):
    """The training images with their labels permuted (seeded): C3's memorisation task."""
    import torch

    x, y = train_data
    g = torch.Generator().manual_seed(10_000 + robust_seed)
    return x, y[torch.randperm(y.shape[0], generator=g)]


@pytest.fixture(scope="session")
def shuffled_mlp_model(zoo, train_data, shuffled_labels):
    from robtest.zoo import mlp

    shape, k = task_shape(train_data)
    return zoo("mlp256-shuffled", lambda: mlp(shape, k), data=shuffled_labels, epochs=150, lr=1e-3)
