"""The plugin's fixtures: ``robust_model`` (yours to define), ``robust_data`` and ``robust``, and what they keep
per test (the test running now, the shared fixture computing now, the session a property marker uses).

Thin: the ``robust`` fixture builds a :class:`robtest.session.RobustSession` (imported when it runs) from the
run's :class:`~robtest.options.Options`, once, and hands it a recorder that publishes each record in the test's
``user_properties`` (JSON-safe, so xdist workers send it to the controller). This module imports only pytest, the
standard library and robtest's torch-free modules.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from robtest import distributed
from robtest.options import BASELINE, OPTIONS
from robtest.property_table import PROPERTIES

__all__ = ["CURRENT", "FIXTURES", "INDEX", "MARKER_FIXTURES", "SESSION", "property_marks", "robust", "robust_data",
           "robust_model"]

#: The test running now (set by the plugin's runtest hooks).
CURRENT = pytest.StashKey[Any]()
#: A test's collection index: orders the report and the summary, the same on every xdist worker.
INDEX = pytest.StashKey[int]()
#: The shared (not function-scoped) fixtures computing now, innermost last (kept by the plugin's hook).
FIXTURES = pytest.StashKey[list[str]]()
#: The session a test's property markers run on.
SESSION = pytest.StashKey[Any]()
#: Fixture values that property markers named by string (``surrogate="plain_model"``), resolved per test.
MARKER_FIXTURES = pytest.StashKey[dict[str, Any]]()


def property_marks(item: pytest.Item) -> list[pytest.Mark]:
    """The test's property markers (those of :data:`robtest.property_table.PROPERTIES`), closest first."""
    return [m for m in item.iter_markers() if m.name in PROPERTIES]


def _fixture_id(config: pytest.Config) -> str | None:
    """``where it is defined::name`` of the shared (not function-scoped) fixture computing now, if any."""
    stack = config.stash.get(FIXTURES, None)
    return stack[-1] if stack else None


@pytest.fixture(scope="session")
def robust_model() -> Any:
    """The model under test: override it in your conftest.py with a torch.nn.Module mapping [0, 1] images to logits."""
    pytest.fail(
        "robtest needs a `robust_model` fixture: define one in conftest.py that returns your torch.nn.Module "
        "(images in [0, 1] -> logits; wrap normalising models in robtest.Normalized)",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def robust_data(pytestconfig: pytest.Config) -> Any:
    """The evaluation data: by default what --robust-data names (the embedded digits test split)."""
    from robtest.data import from_spec

    return from_spec(pytestconfig.stash[OPTIONS].data, split="test")


@pytest.fixture(scope="module")
def robust(request: pytest.FixtureRequest, robust_model: Any, robust_data: Any) -> Iterator[Any]:
    """A :class:`robtest.session.RobustSession` over ``robust_model`` and ``robust_data`` with this run's settings."""
    from robtest.session import RobustSession
    from robtest.settings import Settings

    config = request.config
    s = config.stash[OPTIONS]

    def record_id(prop: str) -> str | None:
        """node id :: property, with #2, #3... for the second and later records of one property in a test; for
        a record made while a shared fixture computes, the fixture's id instead of the test's (whichever test
        first asks for the fixture, serial or on an xdist worker, the record keeps its id)."""
        item = config.stash.get(CURRENT, None)
        if item is None:
            return None
        fixture = _fixture_id(config)
        owner = fixture or item.nodeid
        k = sum(1 for key, r in item.user_properties
                if key == "robtest" and r.get("property") == prop and r.get("id", "").startswith(owner + "::"))
        return f"{owner}::{prop}" + (f"#{k + 1}" if k else "")

    def record(rec: dict[str, Any]) -> None:
        item = config.stash.get(CURRENT, None)
        if item is not None:
            fixture = _fixture_id(config)
            rec = {"id": record_id(rec["property"]), "order": item.stash.get(INDEX, None), **rec}
            if fixture:
                rec["fixture"] = fixture
            item.user_properties.append(("robtest", rec))

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    device = s.device
    if worker.startswith("gw") and device in ("auto", "cuda"):
        from robtest.models import spread_device

        device = spread_device(device, int(worker[2:]))
    baseline = config.stash.get(BASELINE, None)
    settings = Settings(
        device=device, samples=s.samples, seed=s.seed, batch_size=s.batch_size, confidence=s.confidence,
        rule=s.rule, max_seconds=s.max_seconds, precision=s.precision, channels_last=s.channels_last,
        budget=s.budget,
        # an absolute path stays as it is; under torchrun rank 0 alone writes files
        artifacts=str(config.rootpath / s.artifacts) if distributed.is_main() else None,
        baseline=baseline["records"] if baseline is not None else None,
        baseline_tolerance=s.baseline_tolerance, baseline_alpha=s.baseline_alpha,
        saving_baseline=s.save_baseline is not None or s.update_baseline is not None,
        cache=cache_folder(config),
    )
    with RobustSession(robust_model, robust_data, settings, recorder=record, record_id=record_id,
                       progress=_progress_sink(config)) as session:
        yield session


def cache_folder(config: pytest.Config) -> str | None:
    """The folder of ``--robust-cache`` under pytest's cache (None when off, or under torchrun, where every rank
    would have to agree on each hit)."""
    s = config.stash[OPTIONS]
    if s.cache == "off" or distributed.active():
        return None
    from robtest.cache import FOLDER

    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider: the same place by hand
    folder = cache.mkdir(FOLDER) if cache is not None else config.rootpath / ".pytest_cache" / "d" / FOLDER
    return str(folder)


def _progress_sink(config: pytest.Config) -> tuple[Callable[[str], None] | None, bool]:
    """Write progress lines to the terminal past pytest's capture: rewritten in place on a terminal, plain
    lines (prefixed with the worker's name) in logs and from xdist workers; none under -qq unless asked."""
    mode = config.stash[OPTIONS].progress
    if mode == "off" or (mode == "auto" and config.get_verbosity() < -1):
        return None, False
    stream = sys.__stderr__
    if stream is None:
        return None, False
    worker = os.environ.get("PYTEST_XDIST_WORKER", "") if hasattr(config, "workerinput") else ""
    live = not worker and stream.isatty()
    capman = config.pluginmanager.getplugin("capturemanager")

    def sink(text: str) -> None:
        import contextlib

        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            if live:
                stream.write(text.ljust(79) if not text.endswith("\n") else text)
            else:
                stream.write((f"[{worker}] " if worker else "") + text + "\n")
            stream.flush()

    return sink, live


@pytest.fixture(autouse=True)
def _robtest_properties(request: pytest.FixtureRequest) -> None:
    # Property markers need the session even when the test body does not ask for `robust`.
    marks = property_marks(request.node)
    if marks:
        request.node.stash[SESSION] = request.getfixturevalue("robust")
        # A model cannot be written in a marker: a transfer surrogate is named by its fixture.
        names = {m.kwargs["surrogate"] for m in marks if isinstance(m.kwargs.get("surrogate"), str)}
        request.node.stash[MARKER_FIXTURES] = {n: request.getfixturevalue(n) for n in sorted(names)}
