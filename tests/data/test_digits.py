from __future__ import annotations

import pytest
import torch

from robtest.data import digits, digits_tensors, from_spec, iter_batches
from robtest.errors import InputError, InvalidArgument


def test_split_sizes_are_documented_and_stratified():
    xtr, ytr = digits_tensors("train")
    xte, yte = digits_tensors("test")
    assert (len(ytr), len(yte)) == (1257, 540)
    assert torch.bincount(yte).min() >= 50  # about 54 per class
    assert float(xtr.min()) == 0.0 and float(xtr.max()) == 1.0


def test_split_is_deterministic_and_seeded():
    a, _ = digits_tensors("test", seed=0)
    b, _ = digits_tensors("test", seed=0)
    c, _ = digits_tensors("test", seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_upsampled_to_28():
    x, y = digits_tensors("test", size=28)
    assert tuple(x.shape) == (540, 1, 28, 28) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_classes_subset_relabels():
    x, y = digits_tensors("all", classes=(3, 7))
    assert set(y.tolist()) == {0, 1} and len(y) == 183 + 179


def test_from_spec():
    assert len(from_spec("digits")) == 540 and len(from_spec("digits28", split="train")) == 1257
    with pytest.raises(InvalidArgument, match="expected 'digits'"):
        from_spec("imagenet")


def test_iter_batches_accepts_dataset_loader_and_tuple():
    ds = digits("test")
    loader = torch.utils.data.DataLoader(ds, batch_size=100)
    for data in (ds, loader, ds.tensors):
        batches = list(iter_batches(data, batch_size=64, samples=130, seed=0))
        assert sum(len(y) for _, y in batches) == 130 and max(len(y) for _, y in batches) == 64


def test_iter_batches_rejects_other_things():
    with pytest.raises(InputError, match="expected a torch Dataset, a DataLoader, or a tuple"):
        list(iter_batches([1, 2, 3]))
    with pytest.raises(InvalidArgument, match="samples: expected an integer >= 1"):
        list(iter_batches(digits("test"), samples=0))
