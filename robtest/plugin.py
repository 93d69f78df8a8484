"""The pytest plugin: options, markers, fixtures, the skip rule and the robustness summary.

This module imports only pytest and the standard library: torch loads when a robustness test actually runs
(inside the ``robust`` fixture), so installing robtest never slows a plain ``pytest`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from robtest import distributed
from robtest._markers import PROPERTIES, marker_errors

SKIP_REASON = "robustness test: run with pytest --robust (or robust = true in the ini file)"
_RULES = ("point", "confident", "plausible")
_BUDGETS = ("quick", "default", "thorough")  # robtest.fuzz.BUDGETS, named here without importing it
_DATA_RE = re.compile(r"^(digits|digits8|digits28|(mnist|cifar10|folder):.+)$")


# -- option parsing: every parser names what it expected and what it got ----------------------------------------

def _device(value: str) -> str:
    v = value.strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", v):
        raise ValueError(f"expected auto, cpu, cuda or cuda:N but got {value!r}")
    return v


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer >= 1 but got {value!r}") from None
    if n < 1:
        raise ValueError(f"expected an integer >= 1 but got {value!r}")
    return n


def _seed(value: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a non-negative integer but got {value!r}") from None
    if n < 0:
        raise ValueError(f"expected a non-negative integer but got {value!r}")
    return n


def _rule(value: str) -> str:
    if value not in _RULES:
        raise ValueError(f"expected one of {', '.join(_RULES)} but got {value!r}")
    return value


def _confidence(value: str) -> float:
    try:
        c = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number in (0, 1) such as 0.95 but got {value!r}") from None
    if not 0 < c < 1:
        raise ValueError(f"expected a number in (0, 1) such as 0.95 but got {value!r}")
    return c


def _data(value: str) -> str:
    if not _DATA_RE.match(value.strip()):
        raise ValueError(
            f"expected 'digits', 'digits28', 'mnist:PATH', 'cifar10:PATH' or 'folder:PATH' but got {value!r}"
        )
    return value.strip()


def _budget(value: str) -> str:
    if value not in _BUDGETS:
        raise ValueError(f"expected one of {', '.join(_BUDGETS)} but got {value!r}")
    return value


def _precision(value: str) -> str:
    if value not in ("fp32", "bf16"):  # robtest.models.PRECISIONS, named here without importing torch
        raise ValueError(f"expected fp32 or bf16 but got {value!r}")
    return value


def _progress(value: str) -> str:
    if value not in ("auto", "on", "off"):
        raise ValueError(f"expected auto, on or off but got {value!r}")
    return value


def _seconds(value: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds > 0 such as 600 but got {value!r}") from None
    if not 0 < t < float("inf"):
        raise ValueError(f"expected a number of seconds > 0 such as 600 but got {value!r}")
    return t


def _folder(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a folder path but got {value!r}")
    return value.strip()


def _tolerance(value: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected an accuracy margin in [0, 1) such as 0.01 but got {value!r}") from None
    if not 0 <= t < 1:
        raise ValueError(f"expected an accuracy margin in [0, 1) such as 0.01 but got {value!r}")
    return t


def _path(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a file path but got {value!r}")
    return value.strip()


def _argparse_type(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            return fn(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = fn.__name__.strip("_")
    return parse


@dataclass(frozen=True)
class _Option:
    dest: str
    parse: Callable[[str], Any]
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")


_OPTIONS = (
    _Option("robust_device", _device, "auto",
            "device for robustness tests: auto (CUDA when present), cpu, cuda, cuda:N"),
    _Option("robust_samples", _positive_int, None, "evaluate at most N samples (a seeded random subset); default all"),
    _Option("robust_seed", _seed, 0, "seed for subsets and random starts (same numbers on every rerun and worker)"),
    _Option("robust_batch_size", _positive_int, 256, "evaluation batch size"),
    _Option("robust_data", _data, "digits", "data for the default robust_data fixture: digits, digits28, mnist:PATH, "
            "cifar10:PATH, folder:PATH (robtest never downloads)"),
    _Option("robust_rule", _rule, "point", "verdict rule: point (estimate), confident (whole interval: release gates), "
            "plausible (interval reaches it: reproducing a paper on few samples)"),
    _Option("robust_confidence", _confidence, 0.95, "confidence level of the intervals"),
    _Option("robust_artifacts", _folder, "robtest-artifacts", "folder (relative: under the rootdir) for the images "
            "and JSON of failing perturbations found by fuzzing"),
    _Option("robust_max_seconds", _seconds, None, "time budget of each accuracy floor and confidence ceiling: "
            "when it runs out before the verdict settles, the verdict is 'inconclusive' (never a pass)"),
    _Option("robust_precision", _precision, "fp32", "precision of the attacks' forward and backward passes in "
            "accuracy evaluations: fp32, or bf16 (autocast; points still judged in the model's own precision)"),
    _Option("robust_progress", _progress, "auto", "progress of evaluations longer than 2 s (samples, rate, time "
            "left): auto (off under -qq), on, off"),
    _Option("robust_budget", _budget, "default", "fuzzing budget tier: quick, default or thorough (hypothesis "
            "max_examples 25 / 100 / 500 for @fuzz markers; given explicitly, also for @given tests)"),
)


@dataclass(frozen=True)
class Settings:
    enabled: bool
    device: str
    samples: int | None
    seed: int
    batch_size: int
    data: str
    rule: str
    confidence: float
    report: str | None
    artifacts: str = "robtest-artifacts"
    max_seconds: float | None = None
    precision: str = "fp32"
    channels_last: bool = False
    progress: str = "auto"
    budget: str = "default"
    save_baseline: str | None = None
    markdown: str | None = None
    html: str | None = None
    baseline: str | None = None
    baseline_tolerance: float = 0.0
    baseline_alpha: float = 0.05


SETTINGS = pytest.StashKey[Settings]()
CURRENT = pytest.StashKey[Any]()
SESSION = pytest.StashKey[Any]()
#: Fixture values that property markers named by string (``surrogate="plain_model"``), resolved per test.
MARKER_FIXTURES = pytest.StashKey[dict[str, Any]]()
HYPOTHESIS_PROFILE = pytest.StashKey[Any]()
THREADS = pytest.StashKey[Any]()
BASELINE = pytest.StashKey[Any]()
INDEX = pytest.StashKey[int]()
STARTED = pytest.StashKey[float]()
FIXTURES = pytest.StashKey[list[str]]()  # the shared fixtures computing now, innermost last

#: Options that take a path (a file robtest writes or reads); not in the ini file.
_PATH_OPTIONS = (
    ("robust_report", "write the robustness summary as JSON (schema robtest-report/1) to PATH"),
    ("robust_save_baseline", "write a baseline of this run (per-sample outcomes, settings, fingerprints) to PATH, "
     "to compare later runs with"),
    ("robust_markdown", "write the robustness summary as a Markdown table to PATH (e.g. $GITHUB_STEP_SUMMARY)"),
    ("robust_html", "write a self-contained HTML report with plots to PATH (plots need matplotlib: "
     "pip install 'robtest[report]')"),
    ("robust_baseline", "compare every property with the baseline at PATH (written by --robust-save-baseline) on "
     "the same samples; a significant regression fails the test"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robtest", "adversarial-robustness testing")
    group.addoption("--robust", action="store_true", default=None,
                    help="run robustness tests (they are skipped without it)")
    parser.addini("robust", "run robustness tests, as --robust", type="bool", default=False)
    for opt in _OPTIONS:
        group.addoption(opt.flag, dest=opt.dest, type=_argparse_type(opt.parse), default=None,
                        help=f"{opt.help} (ini: {opt.dest}; default {opt.default})")
        parser.addini(opt.dest, opt.help, default=None)
    for dest, text in _PATH_OPTIONS:
        group.addoption("--" + dest.replace("_", "-"), dest=dest, type=_argparse_type(_path), default=None,
                        metavar="PATH", help=text)
    group.addoption("--robust-channels-last", dest="robust_channels_last", action="store_true", default=False,
                    help="give the attacks in accuracy evaluations channels-last batches (and weights, restored "
                         "after): a GPU throughput option")
    group.addoption("--robust-baseline-tolerance", dest="robust_baseline_tolerance",
                    type=_argparse_type(_tolerance), default=0.0, metavar="DELTA",
                    help="non-inferiority margin of baseline comparisons: an accuracy may drop by DELTA before it "
                         "counts as a regression (default 0; per test: the tolerance= keyword)")
    group.addoption("--robust-baseline-alpha", dest="robust_baseline_alpha", type=_argparse_type(_confidence),
                    default=0.05, metavar="ALPHA",
                    help="significance level of the baseline's regression test (default 0.05)")


def _settings(config: pytest.Config) -> Settings:
    values: dict[str, Any] = {}
    for opt in _OPTIONS:
        v = config.getoption(opt.dest)
        if v is None:
            raw = config.getini(opt.dest)
            if raw not in (None, ""):
                try:
                    v = opt.parse(str(raw))
                except ValueError as exc:
                    raise pytest.UsageError(f"ini option {opt.dest}: {exc}") from None
        values[opt.dest.removeprefix("robust_")] = opt.default if v is None else v
    enabled = bool(config.getoption("robust") or config.getini("robust"))
    return Settings(enabled=enabled, report=config.getoption("robust_report"),
                    save_baseline=config.getoption("robust_save_baseline"),
                    baseline=config.getoption("robust_baseline"), markdown=config.getoption("robust_markdown"),
                    html=config.getoption("robust_html"),
                    channels_last=bool(config.getoption("robust_channels_last")),
                    baseline_tolerance=config.getoption("robust_baseline_tolerance"),
                    baseline_alpha=config.getoption("robust_baseline_alpha"), **values)


def _check_paths(config: pytest.Config, s: Settings) -> None:
    """Files robtest writes at the end must be writable where asked: say so now, not after the whole run."""
    for dest, path in (("robust_report", s.report), ("robust_save_baseline", s.save_baseline),
                       ("robust_markdown", s.markdown), ("robust_html", s.html)):
        if path is None:
            continue
        flag = "--" + dest.replace("_", "-")
        target = Path(path)
        folder = target.parent
        if target.is_dir():
            raise pytest.UsageError(f"{flag}: expected a file path but {path!r} is a folder")
        if not folder.is_dir():
            raise pytest.UsageError(f"{flag}: the folder {str(folder)!r} (for {path!r}) does not exist; create it or "
                                    "choose another path")
    if s.baseline is not None:
        from robtest.baseline import load_baseline
        from robtest.errors import BaselineError

        try:
            config.stash[BASELINE] = load_baseline(s.baseline)
        except BaselineError as exc:
            raise pytest.UsageError(f"--robust-baseline: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "robust: a robustness test (skipped unless pytest --robust)")
    for spec in PROPERTIES.values():
        config.addinivalue_line("markers", f"{spec.name}({', '.join(spec.required)}, ...): {spec.summary}")
    settings = _settings(config)
    config.stash[SETTINGS] = settings
    config.stash[STARTED] = time.time()
    _check_paths(config, settings)
    _check_distributed(config, settings)
    config.pluginmanager.register(_Summary(config), "robtest-summary")
    if settings.enabled:
        # A broken evaluation does not pass because its measurement carries the diagnostics into the verdict
        # (robtest.diagnostics), not through warning filters, which a user's filterwarnings, -W or
        # -p no:warnings would override. EvaluationWarning stays an extra channel.
        # Slow models must not trip hypothesis deadlines in @given robustness tests; --robust-budget sets the
        # number of examples. (Imports hypothesis, not torch, and only under --robust.)
        from robtest.fuzz import configure_hypothesis

        given_budget = config.getoption("robust_budget") is not None or config.getini("robust_budget") not in (None, "")
        config.stash[HYPOTHESIS_PROFILE] = configure_hypothesis(settings.budget if given_budget else None)
        _share_cpu_threads(config)


def _check_distributed(config: pytest.Config, s: Settings) -> None:
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
    s = config.stash[SETTINGS]
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


def _property_marks(item: pytest.Item) -> list[pytest.Mark]:
    return [m for m in item.iter_markers() if m.name in PROPERTIES]


def _is_robustness_test(item: pytest.Item) -> bool:
    return (bool(_property_marks(item)) or item.get_closest_marker("robust") is not None
            or "robust" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The collection index orders the report and the summary: the same on every xdist worker (same collection),
    # whatever order the tests finish in.
    for i, item in enumerate(items):
        item.stash[INDEX] = i
    if config.stash[SETTINGS].enabled:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if _is_robustness_test(item):
            item.add_marker(skip)


def _fixture_id(config: pytest.Config) -> str | None:
    """``where it is defined::name`` of the shared (not function-scoped) fixture computing now, if any."""
    stack = config.stash.get(FIXTURES, None)
    return stack[-1] if stack else None


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
    marks = _property_marks(item)
    if not marks:
        _fail_baseline(item, [])
        return result
    problems = [e for m in marks for e in marker_errors(m.name, m.args, m.kwargs)]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    session = item.stash[SESSION]
    from robtest.errors import InvalidArgument

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


_BAD_BASELINE = ("regression", "missing", "mismatch")


def _fail_baseline(item: pytest.Item, failures: list[str]) -> None:
    """Fail the test with its verdicts' failures and every property that regressed from (or could not be paired
    with) the baseline of --robust-baseline."""
    failures = failures + [rec["baseline"]["message"] for key, rec in item.user_properties
                           if key == "robtest" and rec.get("baseline", {}).get("status") in _BAD_BASELINE]
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


def _fail_suspect_measurements(item: pytest.Item) -> None:
    """A measurement made in the test body whose evaluation tripped an indicator fails the test, whether or not
    the body asserted on it: a number that cannot be trusted must not let a test pass."""
    bad = [rec for key, rec in item.user_properties
           if key == "robtest" and rec.get("verdict") is None and rec["measurement"].get("suspect")]
    if not bad:
        return
    from robtest.diagnostics import blocking_lines

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
    from robtest.errors import RobtestError, RobustnessWarning

    # A RobustnessWarning raised as an error (EvaluationWarning under --robust) is robtest's message too.
    ours = (RobtestError, RobustnessWarning)
    if call.excinfo is not None and call.excinfo.errisinstance(ours) and report.outcome == "failed":
        exc = call.excinfo.value
        report.longrepr = f"{item.nodeid}: {type(exc).__name__}: {exc}"
    return report


# -- fixtures ----------------------------------------------------------------------------------------------------

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

    return from_spec(pytestconfig.stash[SETTINGS].data, split="test")


@pytest.fixture(scope="module")
def robust(request: pytest.FixtureRequest, robust_model: Any, robust_data: Any) -> Iterator[Any]:
    """A :class:`robtest.session.RobustSession` over ``robust_model`` and ``robust_data`` with this run's settings."""
    from robtest.session import RobustSession

    config = request.config
    s = config.stash[SETTINGS]

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
    with RobustSession(robust_model, robust_data, device=device, samples=s.samples, seed=s.seed,
                       batch_size=s.batch_size, confidence=s.confidence, rule=s.rule, recorder=record) as session:
        # an absolute path stays as it is; under torchrun rank 0 alone writes files
        session.artifacts_dir = str(config.rootpath / s.artifacts) if distributed.is_main() else None
        session.budget = s.budget
        session.max_seconds = s.max_seconds
        session.precision, session.channels_last = s.precision, s.channels_last
        session.progress_sink, session.progress_live = _progress_sink(config)
        session.record_id = record_id
        session.saving_baseline = s.save_baseline is not None
        baseline = config.stash.get(BASELINE, None)
        if baseline is not None:
            session.baseline = baseline["records"]
            session.baseline_tolerance, session.baseline_alpha = s.baseline_tolerance, s.baseline_alpha
        yield session


def _progress_sink(config: pytest.Config) -> tuple[Callable[[str], None] | None, bool]:
    """Write progress lines to the terminal past pytest's capture: rewritten in place on a terminal, plain
    lines (prefixed with the worker's name) in logs and from xdist workers; none under -qq unless asked."""
    mode = config.stash[SETTINGS].progress
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
    marks = _property_marks(request.node)
    if marks:
        request.node.stash[SESSION] = request.getfixturevalue("robust")
        # A model cannot be written in a marker: a transfer surrogate is named by its fixture.
        names = {m.kwargs["surrogate"] for m in marks if isinstance(m.kwargs.get("surrogate"), str)}
        request.node.stash[MARKER_FIXTURES] = {n: request.getfixturevalue(n) for n in sorted(names)}


# -- the summary: workers publish JSON-safe records in user_properties, the controller prints -------------------

class _Summary:
    """Collects the records of every test's report (local or from xdist workers), prints the table and writes
    the JSON report and the baseline; on the controller only."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[dict[str, Any]] = []
        self.failed_tests: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self._collect(report)
        if report.failed:
            self.failed_tests.add(report.nodeid)
        on_worker = hasattr(self.config, "workerinput")  # a worker's reports go to the controller as they are
        if not on_worker and any(key == "robtest" and isinstance(rec, dict) for key, rec in report.user_properties):
            # Reporters after this one (JUnit XML writes str(value)) get each record as JSON, not a Python
            # repr; a new list, so the test item keeps its dicts.
            report.user_properties = [(key, junit_json(rec) if key == "robtest" and isinstance(rec, dict) else rec)
                                      for key, rec in report.user_properties]

    def _collect(self, report: pytest.TestReport) -> None:
        outcome = "pass" if report.passed else ("FAIL" if report.failed else report.outcome)
        for key, rec in report.user_properties:
            if key == "robtest" and isinstance(rec, dict):
                verdict = rec.get("verdict")
                if verdict is None:
                    # A measurement without a threshold has no verdict of its own; a claim (threshold as text,
                    # asserted by the test) takes the test's outcome.
                    has_threshold = isinstance(rec.get("threshold"), str) and rec["threshold"]
                    verdict = ("suspect" if rec["measurement"].get("suspect") else
                               outcome if has_threshold else "no threshold")
                if rec.get("fixture"):
                    # a shared fixture's record: once, whichever test (or xdist worker) computed it
                    if any(r.get("id") == rec.get("id") for r in self.records):
                        continue
                    test = f"{rec['fixture']} (fixture, first used by {report.nodeid})"
                else:
                    test = report.nodeid
                self.records.append({"test": test, **rec, "verdict": verdict, "outcome": report.outcome,
                                     "seq": len(self.records)})

    def ordered(self) -> list[dict[str, Any]]:
        """The records in collection order (then in the order each test made them), whatever order the tests
        finished in under xdist."""
        def key(r: dict[str, Any]) -> tuple[int, int, int]:
            order = r.get("order")
            return (0 if order is not None else 1, order if order is not None else 0, r["seq"])

        return [{k: v for k, v in r.items() if k != "seq"} for r in sorted(self.records, key=key)]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Under torchrun the ranks say how their runs went: rank 0 names the tests that failed elsewhere, and
        fails the run if any did (or if a rank does not answer)."""
        if not (self.config.stash[SETTINGS].enabled and distributed.active()):
            return
        failed = [r["test"] for r in self.records if r["outcome"] == "failed"]
        mine = {"failed": sorted(set(failed) | self.failed_tests), "exitstatus": int(exitstatus)}
        self.elsewhere: list[str] = []
        try:
            ranks = distributed.barrier_gather(mine)
        except Exception as err:  # noqa: BLE001 - a rank that died: say so, and fail the run
            self.elsewhere = [f"robtest: rank {distributed.rank()} could not hear from the other ranks: {err}"]
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        for r, got in enumerate(ranks):
            if r == distributed.rank():
                continue
            extra = [t for t in got["failed"] if t not in mine["failed"]]
            if extra:
                self.elsewhere.append(f"robtest: rank {r} failed {len(extra)} test(s) that passed here: "
                                      + ", ".join(extra))
            if (got["exitstatus"] not in (0, 5) or extra) and session.exitstatus in (0, 5):
                if not extra:
                    self.elsewhere.append(f"robtest: rank {r} ended with exit status {got['exitstatus']}")
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or not distributed.is_main():
            return  # a worker's or another rank's records are rank 0's / the controller's to print
        for line in getattr(self, "elsewhere", []):
            terminalreporter.write_line(line, red=True)
        s = self.config.stash[SETTINGS]
        records = self.ordered()
        if s.report or s.html:
            report = {"schema": "robtest-report/1", "run": run_metadata(self.config, records), "records": records}
            if s.report:
                Path(s.report).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            if s.html:
                from robtest.html_report import write_html

                write_html(json.loads(json.dumps(report, default=repr)), s.html)
                terminalreporter.write_line(f"robtest: HTML report written to {s.html}")
        if s.save_baseline:
            from robtest.baseline import BASELINE_SCHEMA, baseline_entry

            entries = {r["id"]: baseline_entry(r) for r in records if r.get("id") and r["property"] != "fuzz"}
            run = run_metadata(self.config, records)
            base = {"schema": BASELINE_SCHEMA, "robtest": run["robtest"], "run": run, "records": entries}
            Path(s.save_baseline).write_text(json.dumps(base, ensure_ascii=False, separators=(",", ":")) + "\n",
                                             encoding="utf-8")
            terminalreporter.write_line(f"robtest: baseline of {len(entries)} records written to {s.save_baseline}")
        if s.markdown:
            Path(s.markdown).write_text(markdown_summary(self.config, records), encoding="utf-8")
        if not records:
            return
        rows = summary_rows(records)
        tr = terminalreporter
        tr.write_sep("=", "robustness summary")
        for i, lines in enumerate(table_lines(rows, width=max(SUMMARY_WIDTH, tr._tw.fullwidth))):
            verdict = rows[i - 1][-1] if i else ""
            bad = verdict.startswith(("FAIL", "suspect", "regression", "no baseline", "mismatch", "test failed",
                                      "inconclusive"))
            for line in lines:
                tr.write_line(line, bold=(i == 0), red=bad, green=verdict.startswith("pass"))
        notes = diagnostic_lines(records)
        if notes:
            tr.write_line("indicators of attack failure (see the README's 'Indicators' section):")
            for line, allowed in notes:
                tr.write_line(line, red=not allowed, yellow=allowed)


SUMMARY_WIDTH = 120
_HEADER = ("test", "property", "setting", "measured [CI] n", "threshold", "verdict")
_MIN_SETTING = 24


def table_lines(rows: list[tuple[str, ...]], *, width: int = SUMMARY_WIDTH) -> list[list[str]]:
    r"""The summary table as lines, one list per row (the header first), within ``width`` columns where the
    test ids allow it.

    Nothing is cut: a row too wide wraps its setting within its column (never narrower than 24 characters),
    and every other cell stays on the row's first line, so a row still reads (and matches) as one line.

    >>> rows = [("t.py::test_a", "accuracy_floor", "under FGSM L∞ ε=0.1 (sequential: settled after 64 of 540 "
    ...          "samples)", "0.5 [0.4–0.6] n=9", ">= 0.3", "pass")]
    >>> for lines in table_lines(rows, width=100):
    ...     print(*lines, sep="\n")
    test          property        setting                          measured [CI] n    threshold  verdict
    t.py::test_a  accuracy_floor  under FGSM L∞ ε=0.1              0.5 [0.4–0.6] n=9  >= 0.3     pass
                                  (sequential: settled after 64
                                  of 540 samples)
    """
    import textwrap

    table = [_HEADER, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADER))]
    fixed = sum(widths) - widths[2] + 2 * (len(_HEADER) - 1)
    widths[2] = min(widths[2], max(_MIN_SETTING, width - fixed))
    out = []
    for r in table:
        setting = textwrap.wrap(r[2], widths[2]) or [""]
        first = [*r[:2], setting[0], *r[3:]]
        lines = ["  ".join(c.ljust(w) for c, w in zip(first, widths, strict=True)).rstrip()]
        pad = " " * (widths[0] + widths[1] + 4)
        lines += [(pad + part).rstrip() for part in setting[1:]]
        out.append(lines)
    return out


def header_line(s: Settings, device: str | None = None) -> str:
    return (f"robtest: rule {s.rule}, confidence {s.confidence:g}, seed {s.seed}, device {device or s.device}, "
            f"data {s.data}" + (f", samples {s.samples}" if s.samples else ""))


def markdown_summary(config: pytest.Config, records: list[dict[str, Any]]) -> str:
    """The summary as Markdown for CI pages: the run's settings, one table row per record, baseline messages."""
    s = config.stash[SETTINGS]
    devices = ", ".join(sorted({r["device"] for r in records if r.get("device")})) or None
    bad = sum(1 for r in records if not _verdict_text(r).startswith(("pass", "test passed")))

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    run = header_line(s, devices).removeprefix("robtest: ")
    lines = ["## Robustness summary", "", run[0].upper() + run[1:]
             + (f"; baseline `{s.baseline}`" if s.baseline else "") + f"; {len(records)} records, {bad} not passing",
             "", "| test | property | setting | measured [CI] n | threshold | verdict |", "|---|---|---|---|---|---|"]
    for row in summary_rows(records):
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    notes = [r["baseline"]["message"] for r in records if r.get("baseline", {}).get("status") in _BAD_BASELINE]
    if notes:
        lines += ["", *(f"- {cell(n)}" for n in notes)]
    return "\n".join(lines) + "\n"


_BULKY = ("sample_ids", "outcomes", "per_sample", "examples", "ray")  # per-sample lists and plot data


def junit_json(rec: dict[str, Any]) -> str:
    """A record as compact JSON for JUnit XML properties, without the per-sample lists and plot data (in the report
    and the baseline)."""
    m = rec.get("measurement") or {}
    details = {k: v for k, v in m.get("details", {}).items() if k not in _BULKY}
    slim = {**rec, "measurement": {**m, "details": details}} if m else rec
    return json.dumps(slim, ensure_ascii=False, separators=(",", ":"), default=repr)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(root: Path) -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_metadata(config: pytest.Config, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What a report's reader needs to know about the run: versions, settings, commit, timing."""
    import platform

    s = config.stash[SETTINGS]
    started = config.stash.get(STARTED, time.time())
    robtest_version = sys.modules["robtest"].__version__ if "robtest" in sys.modules else _version("robtest")
    return {
        "robtest": robtest_version, "torch": _version("torch"), "python": platform.python_version(),
        "device": s.device, "devices": sorted({r["device"] for r in records if r.get("device")}),
        "seed": s.seed, "rule": s.rule, "confidence": s.confidence, "samples": s.samples,
        "batch_size": s.batch_size, "precision": s.precision, "channels_last": s.channels_last,
        "data": s.data, "baseline": s.baseline,
        "baseline_tolerance": s.baseline_tolerance, "baseline_alpha": s.baseline_alpha,
        "model_fingerprints": sorted({r["model_fingerprint"] for r in records if r.get("model_fingerprint")}),
        "git_commit": _git_commit(config.rootpath),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 3),
    }


def near(value: float, limit: float) -> str:
    """``value`` with 3 decimals, or with enough significant digits (4 to 6) that it no longer reads as ``limit``.

    >>> near(0.11987, 0.12), near(0.5, 0.12), near(0.12, 0.12)
    ('0.1199', '0.500', '0.120')
    """
    text = f"{value:.3f}"
    if value == limit or text != f"{limit:.3f}":
        return text
    for digits in (4, 5, 6):
        text = f"{value:.{digits}g}"
        if text != f"{limit:.{digits}g}":
            break
    return text


def _limits(rec: dict[str, Any]) -> list[float]:
    t = rec.get("threshold")
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return [float(t)]
    if isinstance(t, list):
        return [float(v) for v in t if isinstance(v, (int, float))]
    return []


def _fmt_value(rec: dict[str, Any]) -> str:
    m = rec["measurement"]
    value = f"{m['value']:.3f}"
    for limit in _limits(rec):  # enough digits to see which side of the threshold the value lies
        if near(m["value"], limit) != value:
            value = near(m["value"], limit)
    ci = f"{m['low']:.3f}–{m['high']:.3f}"
    fix = m.get("details", {}).get("corrected") or {}
    tail = f", corrected {fix['value']:.3f} [{fix['low']:.3f}–{fix['high']:.3f}]" if fix.get("found") else ""
    return f"{value} [{ci}] n={m['n']}{tail}"


_BASELINE_WORDS = {"regression": "regression", "missing": "no baseline", "mismatch": "mismatch"}


def _verdict_text(rec: dict[str, Any]) -> str:
    allowed = [d["indicator"] for d in rec["measurement"].get("diagnostics", ()) if d["allowed"]]
    noted = [d["indicator"] for d in rec["measurement"].get("diagnostics", ()) if _noted(d, rec)]
    verdict = rec["verdict"]
    passed = rec.get("outcome") == "passed"
    if verdict == "no threshold":
        verdict = "test passed" if passed else "test failed"
    elif verdict == "FAIL" and rec.get("source") == "call" and passed:
        verdict = "FAIL (not asserted)"  # the test made the check but did not assert on it
    base = rec.get("baseline", {}).get("status")
    if base in _BASELINE_WORDS and rec["verdict"] != "suspect":
        word = _BASELINE_WORDS[base]
        verdict = word if rec["verdict"] in ("pass", "no threshold") else f"{verdict}, {word}"
    tags = ([f"allowed: {', '.join(allowed)}"] if allowed else []) + ([f"noted: {', '.join(noted)}"] if noted else [])
    return f"{verdict} ({'; '.join(tags)})" if tags else verdict


def _noted(d: dict[str, Any], rec: dict[str, Any]) -> bool:
    """A counting indicator that fired but did not block: its counterexamples moved the number, not the verdict."""
    return not d["allowed"] and d.get("kind") == "count" and rec.get("verdict") != "suspect"


def _threshold_text(rec: dict[str, Any]) -> str:
    if rec.get("threshold_text"):
        return str(rec["threshold_text"])
    t = rec.get("threshold")
    return t if isinstance(t, str) and t else "(no threshold)"  # suites' claims carry their threshold as text


def summary_rows(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows = []
    for r in records:
        m = r["measurement"]
        rows.append((r["test"], r["property"], m.get("context", ""), _fmt_value(r), _threshold_text(r),
                     _verdict_text(r)))
    return rows


def diagnostic_lines(records: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """One line per indicator that fired: (text, whether the test allowed it)."""
    from robtest.diagnostics import evidence_text

    out = []
    for r in records:
        for d in r["measurement"].get("diagnostics", ()):
            ev = evidence_text(d["evidence"])
            tag = "allowed" if d["allowed"] else "noted" if _noted(d, r) else "SUSPECT"
            out.append((f"  {tag} {r['test']} {r['property']}: {d['indicator']}" + (f" ({ev})" if ev else ""),
                        tag != "SUSPECT"))
    return out
