"""iter_batches: labels as lists are accepted, ambiguous batches and empty data are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from robtest.data import iter_batches
from robtest.errors import InputError

X = torch.rand(6, 1, 2, 2)
Y = torch.tensor([0, 1, 2, 0, 1, 2])


class _ListLabels(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return X[i], int(Y[i])


@pytest.mark.parametrize("data", [
    (X, Y.tolist()),
    (X, tuple(Y.tolist())),
    (X, Y.numpy()),
    [X, Y.tolist()],
    _ListLabels(),
    DataLoader(_ListLabels(), batch_size=4),
    DataLoader(TensorDataset(X, Y), batch_size=4, collate_fn=lambda b: (torch.stack([x for x, _ in b]),
                                                                        [int(y) for _, y in b])),
], ids=["tuple-of-list", "tuple-of-tuple", "numpy-labels", "list-pair", "dataset-int-labels", "loader-int-labels",
        "loader-list-labels"])
def test_labels_as_lists_are_accepted(data):
    xs, ys = zip(*iter_batches(data, batch_size=4), strict=True)
    assert torch.equal(torch.cat(xs), X)
    assert torch.equal(torch.cat(ys), Y)


_IDX = torch.arange(6)


@pytest.mark.parametrize("data,match", [
    (TensorDataset(X, _IDX, Y), r"data: expected batches \(x, y\) of 2 items but got 3 items \(tensor \(4, 1, 2, 2\), "
     r"tensor \(4,\), tensor \(4,\)\); robtest does not guess which is the label: wrap the dataset"),
    (DataLoader(TensorDataset(X, _IDX, Y), batch_size=3), r"expected batches \(x, y\) of 2 items but got 3 items"),
    ((X, _IDX, Y), r"got a tuple of 3 items \(tensor \(6, 1, 2, 2\), tensor \(6,\), tensor \(6,\)\); robtest does "
     r"not guess which is the label: pass \(x, y\)"),
    ((X.numpy(), Y), r"got a tuple of 2 items \(ndarray, tensor \(6,\)\); use torch.from_numpy\(x\).float\(\) for x"),
    ((X, [[0, 1], [2]]), r"data: y: expected labels as a tensor or a list of integers but got a list torch cannot "
     r"convert"),
], ids=["dataset-x-idx-y", "loader-x-idx-y", "tuple-x-idx-y", "numpy-x", "ragged-labels"])
def test_ambiguous_or_unconvertible_data(data, match):
    with pytest.raises(InputError, match=match):
        list(iter_batches(data, batch_size=4))


@pytest.mark.parametrize("data", [
    (X[:0], Y[:0]),
    TensorDataset(X[:0], Y[:0]),
    DataLoader(TensorDataset(X[:0], Y[:0]), batch_size=4),
], ids=["tuple", "dataset", "loader"])
def test_empty_data_is_an_error(data):
    with pytest.raises(InputError, match="data: expected at least one sample but got an empty dataset"):
        list(iter_batches(data))


def test_numpy_labels_keep_their_values():
    (_, y), = iter_batches((X, np.array([2, 2, 1, 0, 0, 1])))
    assert y.tolist() == [2, 2, 1, 0, 0, 1]
