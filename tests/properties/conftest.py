"""Property tests run tiny models: one torch thread is many times faster than several on a shared CPU."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
