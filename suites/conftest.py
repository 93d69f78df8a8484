"""Shared by every suite: the training data that matches --robust-data, the run's seed, the trained reference
models (`zoo`) and the `claim` recorder that puts a measured number in the summary table."""

from __future__ import annotations

import pytest

from suites._helpers import as_tensors, task_shape


@pytest.fixture(scope="session")
def train_data(pytestconfig: pytest.Config):
    """(x, y) training tensors of the dataset --robust-data names (the digits' training split by default)."""
    from robtest.data import from_spec
    from robtest.options import OPTIONS

    return as_tensors(from_spec(pytestconfig.stash[OPTIONS].data, split="train"))


@pytest.fixture(scope="session")
def eval_tensors(robust_data):
    """The evaluation data as tensors (x, y), for the measurements robtest has no property for."""
    return as_tensors(robust_data)


@pytest.fixture(scope="session")
def softmax_model(zoo, train_data):
    """Softmax regression (Goodfellow's shallow model, Cubuk's linear model), Adam 1e-2, 50 epochs."""
    from robtest.zoo import softmax_regression

    shape, k = task_shape(train_data)
    return zoo("softmax", lambda: softmax_regression(shape, k), epochs=50, lr=1e-2, batch_size=128)


@pytest.fixture(scope="session")
def mlp_model(zoo, train_data):
    """A 256-256 ReLU MLP, Adam 1e-3, 50 epochs."""
    from robtest.zoo import mlp

    shape, k = task_shape(train_data)
    return zoo("mlp256", lambda: mlp(shape, k), epochs=50, lr=1e-3)


@pytest.fixture(scope="session")
def robust_seed(pytestconfig: pytest.Config) -> int:
    from robtest.options import OPTIONS

    return pytestconfig.stash[OPTIONS].seed


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, train_data, robust_seed):
    """Train a reference model once per run and share it: ``zoo(name, build, data=None, **recipe)``.

    ``build()`` makes the untrained model, ``recipe`` goes to ``robtest.zoo.train_classifier`` (seeded with
    --robust-seed), ``data`` is ``(x, y)`` (the training split by default). The weights are cached under the
    run's temporary root behind a file lock, so pytest-xdist workers train each model once between them.
    ``name`` must tell the models apart (architecture, recipe, data).
    """
    import os

    from robtest.options import OPTIONS
    from robtest.zoo import cached_model, train_classifier

    base = tmp_path_factory.getbasetemp()
    # xdist workers' basetemps share a parent that is fresh for the run; a plain run keeps its own basetemp.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "robtest-zoo"
    spec = pytestconfig.stash[OPTIONS].data

    def get(name: str, build, data=None, **recipe):
        x, y = train_data if data is None else data
        recipe.setdefault("seed", robust_seed)
        key = f"{name}-{spec}-seed{recipe['seed']}"
        return cached_model(key, build, lambda m: train_classifier(m, x, y, reinit=True, **recipe), root)

    return get


@pytest.fixture
def claim(request: pytest.FixtureRequest):
    """Put a measured number in the robustness summary: ``claim("G1 error", 0.99, ">= 0.97", context=...)``.

    The row's verdict is the test's outcome (the test asserts the threshold itself).
    """
    from robtest.measurement import Measurement

    def put(name: str, value: float, threshold: str, *, context: str = "", low: float | None = None,
            high: float | None = None, n: int = 0, details: dict | None = None) -> None:
        v = float(value)
        m = Measurement(name, v, v if low is None else low, v if high is None else high, n=n, context=context,
                        details=details or {})
        print(f"\n  {name} = {v:.4g} ({context}); threshold {threshold}")
        request.node.user_properties.append(
            ("robtest", {"property": name, "measurement": m.to_record(), "threshold": threshold, "verdict": None}))

    return put
