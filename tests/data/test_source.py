"""iter_batches: ``samples=N`` of a tuple or a Dataset is a seeded random subset, not the first N."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from robtest.data import iter_batches

# Class-sorted, as many datasets on disk are: 50 images of class 0, then 50 of class 1, ... Pixel 0 holds the
# sample's index, so a batch says exactly which samples it holds.
N, CLASSES = 500, 10
X = torch.arange(N, dtype=torch.float32).view(N, 1, 1, 1).expand(N, 1, 2, 2) / N
Y = torch.arange(N) // (N // CLASSES)


def _indices(data, samples, seed, batch_size=16):
    xs, ys = zip(*iter_batches(data, batch_size=batch_size, samples=samples, seed=seed), strict=True)
    idx = (torch.cat(xs)[:, 0, 0, 0] * N).round().long()
    assert torch.equal(torch.cat(ys), Y[idx])  # labels stay with their images
    return idx


@pytest.mark.parametrize("data", [(X, Y), TensorDataset(X, Y)], ids=["tuple", "dataset"])
def test_samples_is_a_seeded_random_subset(data):
    idx = _indices(data, 40, seed=0)
    assert idx.numel() == 40 and idx.unique().numel() == 40  # without replacement
    # The first 40 would all be class 0; a random 40 of 500 misses a given class with probability about 1.5%.
    assert Y[idx].unique().numel() >= 8
    assert torch.equal(_indices(data, 40, seed=0, batch_size=7), idx)  # the subset does not depend on batching
    other = _indices(data, 40, seed=1)
    assert not torch.equal(other.sort().values, idx.sort().values)


@pytest.mark.parametrize("data", [(X, Y), TensorDataset(X, Y)], ids=["tuple", "dataset"])
def test_samples_at_least_the_size_keeps_everything_in_order(data):
    assert torch.equal(_indices(data, N, seed=3), torch.arange(N))
    assert torch.equal(_indices(data, None, seed=3), torch.arange(N))
