"""A user's project for pytester: a fixed linear model whose clean accuracy is 1 on its data by construction."""

from __future__ import annotations

import textwrap

import pytest
import torch  # noqa: F401  (pytester's in-process runs must not re-import torch)
import torchvision  # noqa: F401

import robtest.session  # noqa: F401

USER_CONFTEST = textwrap.dedent(
    """
    import pytest, torch

    def _model():
        g = torch.Generator().manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        with torch.no_grad():
            m[1].weight.copy_(torch.randn(3, 16, generator=g))
            m[1].bias.zero_()
        return m.eval()

    @pytest.fixture(scope="session")
    def robust_model():
        return _model()

    @pytest.fixture(scope="session")
    def robust_data():
        g = torch.Generator().manual_seed(1)
        x = torch.rand(60, 1, 4, 4, generator=g)
        with torch.no_grad():
            y = _model()(x).argmax(1)   # labels the model gets right: clean accuracy 1.0
        return x, y
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(USER_CONFTEST)
    return pytester
