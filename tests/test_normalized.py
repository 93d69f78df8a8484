"""Normalized: a channel count that does not fit its mean/std is an error that says how to fix the data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.errors import InvalidArgument
from robtest.models import Normalized


@pytest.mark.parametrize("x,match", [
    (torch.rand(2, 8, 8, 3), r"expected 3 channels \(one mean/std each\) but got input \(2, 8, 8, 3\); it looks "
     r"channels-last \(N, H, W, C\): use x.permute\(0, 3, 1, 2\)"),
    (torch.rand(2, 1, 8, 8), r"expected 3 channels \(one mean/std each\) but got input \(2, 1, 8, 8\)$"),
], ids=["channels-last", "wrong-channels"])
def test_channel_mismatch(x, match):
    model = Normalized(nn.Flatten(), mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])
    with pytest.raises(InvalidArgument, match=match):
        model(x)
