"""A small CNN trained on the digits in seconds: the model under test for this suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def robust_model(train_data, robust_seed):
    from robtest.zoo import small_cnn, train_classifier

    x, y = train_data
    return train_classifier(small_cnn(in_channels=x.shape[1], classes=int(y.max()) + 1), x, y,
                            epochs=30, lr=2e-3, seed=robust_seed, reinit=True)
