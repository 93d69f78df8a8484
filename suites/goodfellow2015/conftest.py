"""Goodfellow, Shlens & Szegedy, *Explaining and Harnessing Adversarial Examples*, ICLR 2015: the models.

Shallow softmax regression and a 256-256 ReLU MLP stand in for the paper's softmax model and maxout net; the
RBF network has one centre per class and unnormalised one-vs-rest outputs (a softmax-normalised RBF is fooled
like the MLP). All are trained on the --robust-data training split (the 8×8 digits by default), seeded with
--robust-seed, once per run.
"""

from __future__ import annotations

import pytest

from suites._helpers import task_shape


@pytest.fixture(scope="session")
def mlp_fgsm_model(zoo, train_data):
    """The same MLP trained on ``.5·J(x) + .5·J(x_adv)`` with FGSM at ε=0.1 (Goodfellow's α=0.5)."""
    from robtest.zoo import mlp

    shape, k = task_shape(train_data)
    return zoo("mlp256-fgsm0.1", lambda: mlp(shape, k), epochs=50, lr=1e-3, adversarial="fgsm", eps=0.1)


@pytest.fixture(scope="session")
def rbf_model(zoo, train_data):
    from robtest.zoo import RBFNetwork

    shape, k = task_shape(train_data)
    return zoo("rbf", lambda: RBFNetwork(shape, k), epochs=50, lr=1e-2, loss="ovr")


@pytest.fixture(scope="session")
def mlp_noise_model(zoo, train_data):
    """``mlp_noise_model(kind)``: the MLP trained like G2's but with random noise in place of the FGSM step:
    ``.5·J(x) + .5·J(x + n)``, n = ±0.1 per pixel (``"sign"``) or U(−0.1, 0.1) (``"uniform"``)."""
    from robtest.zoo import mlp

    shape, k = task_shape(train_data)

    def get(kind):
        return zoo(f"mlp256-{kind}0.1", lambda: mlp(shape, k), epochs=50, lr=1e-3, noise=kind, noise_eps=0.1)

    return get
