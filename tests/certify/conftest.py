"""Digits networks shared by the certification tests, trained once per session in about a second each."""

from __future__ import annotations

import pytest

from tests.helpers import one_torch_thread

_one_torch_thread = pytest.fixture(scope="package", autouse=True)(one_torch_thread)


@pytest.fixture(scope="session")
def digits_all():
    """All 1797 digits (train and test): the thousands of points the soundness checks run on."""
    from robtest.data import digits_tensors

    return digits_tensors("all")


@pytest.fixture(scope="session", params=[0, 1], ids=["seed0", "seed1"])
def plain_mlp(request):
    """A 64→16→10 ReLU MLP trained plainly on the digits (seed 0 or 1)."""
    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(16,)), x, y, epochs=12, lr=3e-3, seed=request.param, reinit=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def plain_cnn():
    """:func:`tests.certify._nets.digits_cnn` trained plainly on the digits."""
    from robtest.data import digits_tensors
    from robtest.zoo import train_classifier
    from tests.certify._nets import digits_cnn

    x, y = digits_tensors("train")
    model = train_classifier(digits_cnn(), x, y, epochs=6, lr=1e-2, seed=0, reinit=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def ibp_mlp():
    """A 64→32→10 MLP trained with IBP at ε = 0.15 (ramp over 10 of 20 epochs)."""
    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    return train_classifier(mlp(hidden=(32,)), x, y, epochs=20, lr=3e-3, seed=0, reinit=True, adversarial="ibp",
                            eps=0.15, eps_ramp=10)
