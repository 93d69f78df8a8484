"""Shared fixtures."""

from __future__ import annotations

import pytest
from hypothesis import settings

# The tests run as on CI whatever the environment: derandomized hypothesis draws the same examples every run (and
# keeps no example database between runs), so a test that passes once passes again. Suites keep the root default.
settings.load_profile("ci")


@pytest.fixture(scope="session")
def trained_mlp():
    """An MLP trained on the digits in about a second, and the test tensors."""
    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(64,)), x, y, epochs=15, lr=3e-3, seed=0)
    return model, digits_tensors("test")
