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
