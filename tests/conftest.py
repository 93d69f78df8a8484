"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# The tests run as on CI whatever the environment: derandomized hypothesis draws the same examples every run (and
# keeps no example database between runs), so a test that passes once passes again. Suites keep the root default.
settings.load_profile("ci")

# Under pytest-xdist each worker gets its share of the cores for torch, and so do the subprocesses its tests start
# (OMP_NUM_THREADS). robtest's plugin does this for --robust runs only; the test suite runs without --robust, and
# two workers with two torch threads each on two cores spin against each other: the indicator zoo ran 6x slower.
_WORKERS = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
if _WORKERS and "OMP_NUM_THREADS" not in os.environ:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, int(_WORKERS))))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_configure(config):
    config.addinivalue_line("markers", "no_device_guard: not under ROBTEST_DEVICE_GUARD=1 (the test moves models to "
                                       "the meta device itself, or counts host syncs the guard's checks would add)")


@pytest.fixture(autouse=os.environ.get("ROBTEST_DEVICE_GUARD") == "1")
def _device_guard(request):
    """``ROBTEST_DEVICE_GUARD=1 pytest``: every test under the device guard (tests/device_guard.py), which makes a
    tensor robtest's code creates without naming a device fail as it would on a GPU. Tests that use ``meta`` as a
    second device themselves (they run the guard where they need it) or count host syncs opt out."""
    if request.node.get_closest_marker("no_device_guard"):
        yield
        return
    from tests.device_guard import device_guard

    with device_guard():
        yield


@pytest.fixture(scope="session")
def trained_mlp():
    """An MLP trained on the digits in about a second, and the test tensors."""
    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    # reinit: the initial weights from the seed, not from the global RNG (whose state depends on which tests ran
    # first in this process: the margin-vs-CE test failed by one point under one xdist distribution)
    model = train_classifier(mlp(hidden=(64,)), x, y, epochs=15, lr=3e-3, seed=0, reinit=True)
    return model, digits_tensors("test")


@pytest.fixture(scope="session")
def exact_mlp():
    """A 64→16→10 ReLU MLP trained on the digits in about a second, the first POINTS test digits it classifies
    correctly, and which of them are exactly robust at L∞ ε = EPS (MILP): a ``tests.attacks.exact.Exact``."""
    import torch

    from robtest.data import digits_tensors
    from robtest.zoo import mlp, train_classifier
    from tests.attacks.exact import EPS, POINTS, Exact, exact_robust

    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(16,)), x, y, epochs=15, lr=3e-3, seed=0, reinit=True)
    for p in model.parameters():
        p.requires_grad_(False)
    xt, yt = digits_tensors("test")
    with torch.no_grad():
        ok = model(xt).argmax(1) == yt
    xt, yt = xt[ok][:POINTS], yt[ok][:POINTS]
    robust, ties = exact_robust(model, xt, yt, EPS)
    assert ties == 0, "a point too close to call in float32: pick another ε"
    return Exact(model, xt, yt, EPS, robust)
