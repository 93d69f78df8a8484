"""Shared fixtures of the fuzzing tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def constant_images() -> torch.Tensor:
    """Six flat 8×8 images with brightness 0.2, 0.25, 0.3 (twice): the brightest sits 0.1 below 0.4."""
    v = torch.tensor([0.2, 0.25, 0.3, 0.3, 0.25, 0.2])
    return v.view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()
