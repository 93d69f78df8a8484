"""iter_batches: ``samples=N`` is a seeded random subset, not the first N; labels as lists are accepted,
ambiguous batches and empty data are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from robtest.data import iter_batches, order
from robtest.errors import InputError

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
def test_samples_at_least_the_size_keeps_everything_in_the_seeded_order(data):
    assert torch.equal(_indices(data, N, seed=3), order(N, None, 3))
    assert torch.equal(_indices(data, None, seed=3), order(N, None, 3))
    assert sorted(order(N, None, 3).tolist()) == list(range(N))


X6 = torch.rand(6, 1, 2, 2, generator=torch.Generator().manual_seed(0))
Y6 = torch.tensor([0, 1, 2, 0, 1, 2])


class _ListLabels(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return X6[i], int(Y6[i])


@pytest.mark.parametrize("data", [
    (X6, Y6.tolist()),
    (X6, tuple(Y6.tolist())),
    (X6, Y6.numpy()),
    [X6, Y6.tolist()],
    _ListLabels(),
    DataLoader(_ListLabels(), batch_size=4),
    DataLoader(TensorDataset(X6, Y6), batch_size=4, collate_fn=lambda b: (torch.stack([x for x, _ in b]),
                                                                        [int(y) for _, y in b])),
], ids=["tuple-of-list", "tuple-of-tuple", "numpy-labels", "list-pair", "dataset-int-labels", "loader-int-labels",
        "loader-list-labels"])
def test_labels_as_lists_are_accepted(data):
    xs, ys = zip(*iter_batches(data, batch_size=4, seed=None), strict=True)
    assert torch.equal(torch.cat(xs), X6)
    assert torch.equal(torch.cat(ys), Y6)


_IDX = torch.arange(6)


@pytest.mark.parametrize("data,match", [
    (TensorDataset(X6, _IDX, Y6),
     r"data: expected batches \(x, y\) of 2 items but got 3 items \(tensor \(4, 1, 2, 2\), "
     r"tensor \(4,\), tensor \(4,\)\); robtest does not guess which is the label: wrap the dataset"),
    (DataLoader(TensorDataset(X6, _IDX, Y6), batch_size=3), r"expected batches \(x, y\) of 2 items but got 3 items"),
    ((X6, _IDX, Y6), r"got a tuple of 3 items \(tensor \(6, 1, 2, 2\), tensor \(6,\), tensor \(6,\)\); robtest does "
     r"not guess which is the label: pass \(x, y\)"),
    ((X6.numpy(), Y6), r"got a tuple of 2 items \(ndarray, tensor \(6,\)\); use torch.from_numpy\(x\).float\(\) for x"),
    ((X6, [[0, 1], [2]]), r"data: y: expected labels as a tensor or a list of integers but got a list torch cannot "
     r"convert"),
], ids=["dataset-x-idx-y", "loader-x-idx-y", "tuple-x-idx-y", "numpy-x", "ragged-labels"])
def test_ambiguous_or_unconvertible_data(data, match):
    with pytest.raises(InputError, match=match):
        list(iter_batches(data, batch_size=4, seed=None))


@pytest.mark.parametrize("data", [
    (X6[:0], Y6[:0]),
    TensorDataset(X6[:0], Y6[:0]),
    DataLoader(TensorDataset(X6[:0], Y6[:0]), batch_size=4),
], ids=["tuple", "dataset", "loader"])
def test_empty_data_is_an_error(data):
    with pytest.raises(InputError, match="data: expected at least one sample but got an empty dataset"):
        list(iter_batches(data))


def test_numpy_labels_keep_their_values():
    (_, y), = iter_batches((X6, np.array([2, 2, 1, 0, 0, 1])), seed=None)
    assert y.tolist() == [2, 2, 1, 0, 0, 1]
