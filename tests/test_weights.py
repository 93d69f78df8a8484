"""Weights load safely: tensors and safetensors by default, pickled objects only on request."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robtest
from robtest.errors import DatasetNotFoundError, RobustnessWarning, UnsafeCheckpointError


class Custom:  # an arbitrary object a pickle could smuggle in
    pass


def test_state_dict_roundtrip(tmp_path):
    src = nn.Linear(4, 2)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    dst = robtest.load_weights(nn.Linear(4, 2), tmp_path / "w.pt")
    assert torch.equal(dst.weight, src.weight)


def test_safetensors(tmp_path):
    from safetensors.torch import save_file

    src = nn.Linear(4, 2)
    save_file(src.state_dict(), str(tmp_path / "w.safetensors"))
    assert torch.equal(robtest.load_weights(nn.Linear(4, 2), tmp_path / "w.safetensors").bias, src.bias)


def test_pickled_checkpoint_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": nn.Linear(4, 2).state_dict(), "extra": Custom()}, path)
    with pytest.raises(UnsafeCheckpointError, match="would unpickle arbitrary objects.*allow_pickle=True"):
        robtest.load_weights(nn.Linear(4, 2), path)
    with pytest.warns(RobustnessWarning, match="weights_only=False"):
        robtest.load_weights(nn.Linear(4, 2), path, allow_pickle=True)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="expected a file at"):
        robtest.load_weights(nn.Linear(4, 2), tmp_path / "nope.pt")
