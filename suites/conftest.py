"""Shared by every suite: the training data that matches --robust-data, and the run's seed."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def train_data(pytestconfig: pytest.Config):
    """(x, y) training tensors of the dataset --robust-data names (the digits' training split by default)."""
    import torch

    from robtest.data import from_spec, iter_batches
    from robtest.plugin import SETTINGS

    ds = from_spec(pytestconfig.stash[SETTINGS].data, split="train")
    xs, ys = zip(*iter_batches(ds, batch_size=1024))
    return torch.cat(xs), torch.cat(ys)


@pytest.fixture(scope="session")
def robust_seed(pytestconfig: pytest.Config) -> int:
    from robtest.plugin import SETTINGS

    return pytestconfig.stash[SETTINGS].seed
