"""An IBP-trained MLP on the embedded digits (Gowal et al. 2018): the model a certified floor can prove.

(The folder sorts after ``suites/conftest.py``: with ``--doctest-modules`` a subfolder conftest imported before
it under the same module name breaks collection.)

Pinned to the 8×8 digits whatever --robust-data says: the recipe (ε 0.12 with a 50-epoch ramp, 100 epochs, κ
ramp 1 → 0.5) was measured there, a few seconds on a CPU.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ibp_model(robust_seed):
    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    return train_classifier(mlp(hidden=(64, 64)), x, y, epochs=100, lr=2e-3, adversarial="ibp", eps=0.12,
                            eps_ramp=50, seed=robust_seed, reinit=True).eval()


@pytest.fixture(scope="session")
def robust_model(ibp_model):
    return ibp_model


@pytest.fixture(scope="session")
def robust_data():
    from robtest.data import digits_tensors

    return digits_tensors("test")
