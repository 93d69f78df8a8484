"""The order an evaluation visits samples in: one seeded permutation, whatever order the data come in."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from robtest.data import iter_batches
from robtest.data._source import iter_indexed, order
from robtest.errors import InputError


def _sorted_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from robtest.data import digits_tensors

    x, y = digits_tensors("test")
    idx = torch.argsort(y, stable=True)  # class-sorted, as a careless loader would give them
    return x[idx], y[idx]


class _Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y, strict=True))


def _ids_and_labels(data, **kw):
    ids, ys = zip(*[(i, y) for i, _, y in iter_indexed(data, batch_size=50, **kw)], strict=True)
    return torch.cat(ids), torch.cat(ys)


def test_sorted_and_shuffled_loaders_give_the_same_seeded_order():
    x, y = _sorted_digits()
    ds = TensorDataset(x, y)
    want_ids, want_y = _ids_and_labels((x, y), seed=3)
    assert torch.equal(want_ids, order(len(y), None, 3)) and torch.equal(want_y, y[want_ids])
    for data in (ds, DataLoader(ds, batch_size=64), DataLoader(ds, batch_size=17, shuffle=True),
                 DataLoader(_Stream(x, y), batch_size=32)):
        ids, ys = _ids_and_labels(data, seed=3)
        assert torch.equal(ids, want_ids) and torch.equal(ys, want_y), type(data).__name__


def test_a_subset_of_class_sorted_data_holds_every_class_and_depends_on_the_seed():
    x, y = _sorted_digits()
    first = torch.cat([yb for _, yb in iter_batches((x, y), samples=60, seed=0)])
    again = torch.cat([yb for _, yb in iter_batches((x, y), samples=60, seed=0)])
    other = torch.cat([yb for _, yb in iter_batches((x, y), samples=60, seed=1)])
    assert len(first) == 60 and torch.equal(first, again) and not torch.equal(first, other)
    assert len(set(first.tolist())) == 10  # the first 60 of the sorted data hold classes 0 and 1 only
    assert set(y[:60].tolist()) == {0, 1}


def test_a_subset_is_the_prefix_of_the_full_order():
    x, y = _sorted_digits()
    full, _ = _ids_and_labels((x, y), seed=5)
    part, _ = _ids_and_labels((x, y), seed=5, samples=120)
    assert torch.equal(part, full[:120])


@pytest.mark.parametrize("data", [
    (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
    TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
    DataLoader(_Stream(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)), batch_size=4),
], ids=["tuple", "dataset", "iterable-loader"])
def test_empty_data_is_an_error(data):
    with pytest.raises(InputError, match="expected at least one sample"):
        list(iter_batches(data))
