"""robtest.models: eval_mode puts every submodule in eval mode and gives each its own flag back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.errors import ModelStateWarning
from robtest.models import eval_mode


def _partly_training() -> nn.Sequential:
    """An eval-mode model with a dropout and a batch norm left in train mode inside (a common fixture slip:
    ``model.eval()`` then ``model.head.train()`` for fine-tuning)."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(4, 6, generator=g))
        model[2].running_mean.fill_(1.0)
        model[2].running_var.fill_(4.0)
    model.eval()
    model[1].train()
    model[2].train()
    return model


def test_eval_mode_switches_submodules_left_in_train_mode_and_restores_them():
    model = _partly_training()
    x = torch.rand(8, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # eval mode in closed form: dropout is the identity, BN uses the running statistics
        expected = (model[0](x) - 1.0) / (4.0 + model[2].eps) ** 0.5
    with pytest.warns(ModelStateWarning), eval_mode(model), torch.no_grad():
        assert not any(m.training for m in model.modules())
        torch.testing.assert_close(model(x), expected)
        torch.testing.assert_close(model(x), expected)
    assert [m.training for m in model.modules()] == [False, False, True, True]
    assert torch.equal(model[2].running_mean, torch.ones(4))  # no batch statistics leaked into the buffers
