"""The pytest plugin (the ``pytest11`` entry point): robtest's hooks.

The hooks read the options once (:mod:`robtest.options`), register the markers of the property table
(:mod:`robtest.property_table`), skip robustness tests without ``--robust``, run each test's property markers
on the ``robust`` fixture's session (:mod:`robtest.fixtures`) and fail the test with what did not pass, and
hand every report to the summary's collector (:mod:`robtest.reporter`), which prints and writes the results.

This module imports only pytest, the standard library and robtest's torch-free modules: torch loads when a
robustness test actually runs (inside the ``robust`` fixture), so installing robtest never slows a plain
``pytest`` run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from robtest import distributed
from robtest.diagnostics import blocking_lines
from robtest.errors import InvalidArgument, RobtestError, RobustnessWarning
from robtest.fixtures import CURRENT, FIXTURES, INDEX, MARKER_FIXTURES, SESSION, property_marks
from robtest.options import OPTIONS, STARTED, Options, add_options, check_paths, read_options
from robtest.property_table import PROPERTIES, marker_errors
from robtest.reporter import Reporter
from robtest.summary import BAD_BASELINE, header_line

#: The plugin's fixtures live in their own module.
pytest_plugins = ("robtest.fixtures",)

SKIP_REASON = "robustness test: run with pytest --robust (or robust = true in the ini file)"

HYPOTHESIS_PROFILE = pytest.StashKey[Any]()
THREADS = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from robtest import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "robust: a robustness test (skipped unless pytest --robust)")
    for spec in PROPERTIES.values():
        config.addinivalue_line("markers", f"{spec.name}({', '.join(spec.required)}, ...): {spec.summary}")
    options = read_options(config)
    config.stash[OPTIONS] = options
    config.stash[STARTED] = time.time()
    check_paths(config, options)
    _check_distributed(config, options)
    config.pluginmanager.register(Reporter(config), "robtest-summary")
    if options.enabled and options.cache == "clear" and not hasattr(config, "workerinput"):
        from robtest.cache import MeasurementCache
        from robtest.fixtures import cache_folder

        folder = cache_folder(config)
        if folder is not None:
            MeasurementCache(folder).clear()
    if options.enabled:
        # A broken evaluation does not pass because its measurement carries the diagnostics into the verdict
        # (robtest.diagnostics), not through warning filters, which a user's filterwarnings, -W or
        # -p no:warnings would override. EvaluationWarning stays an extra channel.
        # Slow models must not trip hypothesis deadlines in @given robustness tests; --robust-budget sets the
        # number of examples. (Imports hypothesis, not torch, and only under --robust.)
        from robtest.fuzz import configure_hypothesis

        given_budget = config.getoption("robust_budget") is not None or config.getini("robust_budget") not in (None, "")
        config.stash[HYPOTHESIS_PROFILE] = configure_hypothesis(options.budget if given_budget else None)
        _share_cpu_threads(config)


def _check_distributed(config: pytest.Config, s: Options) -> None:
    """Under torchrun every rank is one pytest process sharding each property's samples with the others; xdist
    workers inside a rank would each need their own process group, so the two do not nest."""
    if not (s.enabled and distributed.active()):
        return
    workers = getattr(config.option, "numprocesses", None)
    if workers or hasattr(config, "workerinput"):
        raise pytest.UsageError(
            f"--robust under torchrun (WORLD_SIZE={distributed.world()}): expected one pytest process per rank but "
            f"got pytest-xdist workers (-n {workers}); drop -n (or pass -p no:xdist) when launching with torchrun, "
            "or run xdist without torchrun (see the README's 'Distributed' section)")


def _share_cpu_threads(config: pytest.Config) -> None:
    """Give each pytest-xdist worker its share of the CPU cores for torch's intra-op threads.

    Every worker otherwise starts one torch thread per core, so -n 2 on 2 cores runs 4 busy threads and small
    models slow down many-fold. The user's own OMP_NUM_THREADS wins; the setting is restored at unconfigure.
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not hasattr(config, "workerinput") or not workers or "OMP_NUM_THREADS" in os.environ:
        return
    n = max(1, (os.cpu_count() or 1) // max(1, int(workers)))
    os.environ["OMP_NUM_THREADS"] = str(n)  # read by torch when it is first imported
    config.stash[THREADS] = None
    if "torch" in sys.modules:  # already imported (by a conftest): set it directly and restore it later
        torch = sys.modules["torch"]
        config.stash[THREADS] = torch.get_num_threads()
        torch.set_num_threads(n)


def pytest_unconfigure(config: pytest.Config) -> None:
    if distributed.started():
        # torchrun stops every rank as soon as one exits with an error: the others wait here until rank 0 has
        # printed the summary and written its files.
        try:
            distributed.barrier_gather(None)
        except Exception:  # noqa: BLE001 - a rank already gone: nothing left to wait for
            pass
    if config.stash.get(THREADS, None) is not None:
        sys.modules["torch"].set_num_threads(config.stash[THREADS])
    previous = config.stash.get(HYPOTHESIS_PROFILE, None)
    if previous is not None:
        from robtest.fuzz import restore_hypothesis

        restore_hypothesis(previous)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    s = config.stash[OPTIONS]
    if not s.enabled:
        return None
    device = s.device
    if device == "auto":  # torch loads anyway under --robust
        from robtest.models import resolve_device

        device = f"auto ({resolve_device('auto')})"
    lines = [header_line(s, device)]
    if distributed.active():
        lines.append(f"robtest: rank {distributed.rank()} of {distributed.world()} (torchrun): each property's "
                     f"batches of {s.batch_size} are shared out whole over the ranks (at least "
                     f"{s.batch_size * distributed.world()} samples keep every rank busy); rank 0 prints the summary "
                     "and writes the files")
    if s.baseline:
        lines.append(f"robtest: comparing with the baseline {s.baseline} (tolerance {s.baseline_tolerance:g}, "
                     f"alpha {s.baseline_alpha:g})")
    return lines


def _is_robustness_test(item: pytest.Item) -> bool:
    return (bool(property_marks(item)) or item.get_closest_marker("robust") is not None
            or "robust" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The collection index orders the report and the summary: the same on every xdist worker (same collection),
    # whatever order the tests finish in.
    for i, item in enumerate(items):
        item.stash[INDEX] = i
    if config.stash[OPTIONS].enabled:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if _is_robustness_test(item):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    if fixturedef.scope == "function":
        return (yield)
    stack = request.config.stash.setdefault(FIXTURES, [])
    stack.append(f"{fixturedef.baseid or '<conftest>'}::{fixturedef.argname}")
    try:
        return (yield)
    finally:
        stack.pop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[CURRENT] = item


def pytest_runtest_teardown(item: pytest.Item) -> None:
    item.config.stash[CURRENT] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    _fail_suspect_measurements(item)
    marks = property_marks(item)
    if not marks:
        _fail_baseline(item, [])
        return result
    problems = [e for m in marks for e in marker_errors(m.name, m.args, m.kwargs)]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    session = item.stash[SESSION]
    failures = []
    # iter_markers yields the closest first; evaluate in the order written, top to bottom.
    for mark in reversed(marks):
        kwargs = dict(mark.kwargs)
        if isinstance(kwargs.get("surrogate"), str):
            kwargs["surrogate"] = item.stash[MARKER_FIXTURES][kwargs["surrogate"]]
        try:
            verdict = session.check(mark.name, kwargs)
        except InvalidArgument as exc:
            pytest.fail(str(exc), pytrace=False)
        if not verdict.passed:
            failures.append(verdict.message())
    _fail_baseline(item, failures)
    return result


def _fail_baseline(item: pytest.Item, failures: list[str]) -> None:
    """Fail the test with its verdicts' failures and every property that regressed from (or could not be paired
    with) the baseline of --robust-baseline."""
    failures = failures + [rec["baseline"]["message"] for key, rec in item.user_properties
                           if key == "robtest" and rec.get("baseline", {}).get("status") in BAD_BASELINE]
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


def _fail_suspect_measurements(item: pytest.Item) -> None:
    """A measurement made in the test body whose evaluation tripped an indicator fails the test, whether or not
    the body asserted on it: a number that cannot be trusted must not let a test pass."""
    bad = [rec for key, rec in item.user_properties
           if key == "robtest" and rec.get("verdict") is None and rec["measurement"].get("suspect")]
    if not bad:
        return
    lines = []
    for rec in bad:
        m = rec["measurement"]
        lines.append(f"SUSPECT evaluation of {rec['property']} {m['context']}: the number ({m['value']:.4g}) "
                     "cannot be trusted:")
        lines += blocking_lines(m["diagnostics"], "the call")
    pytest.fail("\n".join(lines), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    # robtest's own errors already say what was expected, what came and what to do: show just that,
    # not a traceback through robtest's internals.
    # A RobustnessWarning raised as an error (EvaluationWarning under --robust) is robtest's message too.
    ours = (RobtestError, RobustnessWarning)
    if call.excinfo is not None and call.excinfo.errisinstance(ours) and report.outcome == "failed":
        exc = call.excinfo.value
        report.longrepr = f"{item.nodeid}: {type(exc).__name__}: {exc}"
    return report
