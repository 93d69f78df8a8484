"""Weights load safely: tensors and safetensors by default, pickled objects only on request."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robtest
from robtest.errors import DatasetNotFoundError, InputError, RobustnessWarning, UnsafeCheckpointError


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


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


@pytest.mark.parametrize("wrap", [
    lambda sd: {"model": sd, "epoch": 3},
    lambda sd: {"state_dict": sd, "optimizer": {"lr": torch.tensor(0.1)}},
    lambda sd: {"model_state_dict": sd},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
    lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3},
    lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
], ids=["model-key", "state_dict-key", "model_state_dict-key", "dataparallel-prefix", "wrapped-and-prefixed",
        "compiled-prefix"])
def test_wrapped_checkpoints_are_unwrapped(tmp_path, wrap):
    src = _net()
    torch.save(wrap(src.state_dict()), tmp_path / "ckpt.pt")
    dst = robtest.load_weights(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), tmp_path / "ckpt.pt")
    assert torch.equal(dst[1].weight, src[1].weight)


def test_a_submodule_named_module_keeps_its_prefix(tmp_path):
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(4, 2)

    src = Wrapper()
    torch.save(src.state_dict(), tmp_path / "w.pt")  # keys module.weight, module.bias belong to the model
    assert torch.equal(robtest.load_weights(Wrapper(), tmp_path / "w.pt").module.weight, src.module.weight)


def test_key_picks_one_of_several_state_dicts(tmp_path):
    a, b = _net(), nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    torch.save({"model": a.state_dict(), "ema": b.state_dict()}, tmp_path / "ckpt.pt")
    assert torch.equal(robtest.load_weights(_net(), tmp_path / "ckpt.pt", key="ema")[1].bias, b[1].bias)
    torch.save({"model": a.state_dict(), "state_dict": b.state_dict()}, tmp_path / "two.pt")
    with pytest.raises(InputError, match=r"several entries hold state dicts \('model', 'state_dict'\); pass key="):
        robtest.load_weights(_net(), tmp_path / "two.pt")


@pytest.mark.parametrize("saved,kwargs,match", [
    ({"weights": {"1.weight": torch.zeros(2, 4)}, "epoch": 3}, {},
     r"expected a state dict in '.*' but got a checkpoint dict with keys 'weights', 'epoch' in which no entry is "
     r"a state dict.*pass key='...'"),
    ({"model": {"1.weight": torch.zeros(2, 4)}}, {"key": "ema"}, r"expected an entry 'ema' in '.*' but its keys are "
     r"'model'"),
    ({"backbone.1.weight": torch.zeros(2, 4), "backbone.1.bias": torch.zeros(2)}, {},
     r"expected the 2 keys of Sequential's state dict in '.*' but 2 missing \('1.bias', '1.weight'\) and 2 "
     r"unexpected \('backbone.1.bias', 'backbone.1.weight'\) keys; every key in the file starts with 'backbone.'"),
    ({"1.weight": torch.zeros(2, 8), "1.bias": torch.zeros(2)}, {},
     r"expected tensors of the model's shapes in '.*' but size mismatch for 1.weight"),
], ids=["no-state-dict", "missing-key", "other-prefix", "shape-mismatch"])
def test_checkpoints_that_do_not_fit(tmp_path, saved, kwargs, match):
    torch.save(saved, tmp_path / "ckpt.pt")
    with pytest.raises(InputError, match=match) as info:
        robtest.load_weights(_net(), tmp_path / "ckpt.pt", **kwargs)
    assert info.value.__cause__ is None  # not chained to torch's RuntimeError
    assert info.value.__context__ is None or info.value.__suppress_context__
