"""The plugin's options: every ``--robust-…`` flag and ``robust_…`` ini value, parsed once into :class:`Options`.

Each parser names what it expected and what it got (argparse adds the flag; an ini value's error names its key).
The value lists come from where they live: rules from :mod:`robtest.verdict`, fuzzing budgets from
:mod:`robtest.fuzz`, precisions from :mod:`robtest.settings`. This module imports only pytest, the standard
library and robtest's torch-free modules.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from robtest.fuzz import BUDGETS
from robtest.settings import PRECISIONS
from robtest.verdict import RULES

__all__ = ["BASELINE", "OPTIONS", "PROGRESS", "STARTED", "Options", "add_options", "check_paths", "read_options"]

_DATA_RE = re.compile(r"^(digits|digits8|digits28|(mnist|cifar10|folder):.+)$")
#: How progress of long evaluations shows (``--robust-progress``).
PROGRESS = ("auto", "on", "off")


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
    if value not in RULES:
        raise ValueError(f"expected one of {', '.join(RULES)} but got {value!r}")
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
    if value not in BUDGETS:
        raise ValueError(f"expected one of {', '.join(BUDGETS)} but got {value!r}")
    return value


def _precision(value: str) -> str:
    if value not in PRECISIONS:
        raise ValueError(f"expected {' or '.join(PRECISIONS)} but got {value!r}")
    return value


CACHE_MODES = ("off", "on", "clear")


def _cache(value: str) -> str:
    if value not in CACHE_MODES:
        raise ValueError(f"expected off, on or clear but got {value!r}")
    return value


def _progress(value: str) -> str:
    if value not in PROGRESS:
        raise ValueError(f"expected {', '.join(PROGRESS[:-1])} or {PROGRESS[-1]} but got {value!r}")
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
    _Option("robust_cache", _cache, "off", "reuse the measurements of unchanged properties (same model weights and "
            "code, data, settings, versions) from pytest's cache folder: off, on, or clear (empty it, then on)"),
    _Option("robust_budget", _budget, "default", "fuzzing budget tier: quick, default or thorough (hypothesis "
            "max_examples 25 / 100 / 500 for @fuzz markers; given explicitly, also for @given tests)"),
)


@dataclass(frozen=True)
class Options:
    """Every robtest option of the run, read once at startup (``config.stash[OPTIONS]``)."""

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
    cache: str = "off"
    save_baseline: str | None = None
    markdown: str | None = None
    html: str | None = None
    baseline: str | None = None
    baseline_tolerance: float = 0.0
    baseline_alpha: float = 0.05
    update_baseline: str | None = None
    history: str | None = None


OPTIONS = pytest.StashKey[Options]()
#: When the run started (the report's timing).
STARTED = pytest.StashKey[float]()
#: The baseline of ``--robust-baseline``, read at startup.
BASELINE = pytest.StashKey[Any]()


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
    ("robust_update_baseline", "update the baseline at PATH (created if missing): rewrite the records of the tests "
     "that ran, keep the others, remove the records a test that ran no longer produces"),
    ("robust_history", "keep this run's report under the folder PATH as NNNN_<commit>_<time>.json (saved runs: "
     "compare any two with python -m robtest.compare; the HTML report plots the trend)"),
)


def add_options(parser: pytest.Parser) -> None:
    """Every option, and its ini value where it has one."""
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


def read_options(config: pytest.Config) -> Options:
    """The options as given (flag, then ini value, then default); a bad ini value is a usage error naming its key."""
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
    return Options(enabled=enabled, report=config.getoption("robust_report"),
                    save_baseline=config.getoption("robust_save_baseline"),
                    baseline=config.getoption("robust_baseline"), markdown=config.getoption("robust_markdown"),
                    html=config.getoption("robust_html"),
                    channels_last=bool(config.getoption("robust_channels_last")),
                    baseline_tolerance=config.getoption("robust_baseline_tolerance"),
                    baseline_alpha=config.getoption("robust_baseline_alpha"),
                    update_baseline=config.getoption("robust_update_baseline"),
                    history=config.getoption("robust_history"), **values)


def check_paths(config: pytest.Config, s: Options) -> None:
    """Files robtest writes at the end must be writable where asked: say so now, not after the whole run."""
    if s.history is not None:
        if Path(s.history).is_file():
            raise pytest.UsageError(f"--robust-history: expected a folder but {s.history!r} is a file")
        if not Path(s.history).parent.is_dir():
            raise pytest.UsageError(f"--robust-history: the folder {str(Path(s.history).parent)!r} (for "
                                    f"{s.history!r}) does not exist; create it or choose another path")
    if s.update_baseline is not None and s.save_baseline is not None:
        raise pytest.UsageError("--robust-update-baseline and --robust-save-baseline: expected one of them (update "
                                "keeps the records of tests that did not run; save writes this run's alone)")
    if s.update_baseline is not None and Path(s.update_baseline).exists():
        from robtest.baseline import load_baseline
        from robtest.errors import BaselineError

        try:
            load_baseline(s.update_baseline)
        except BaselineError as exc:
            raise pytest.UsageError(f"--robust-update-baseline: {exc}") from None
    for dest, path in (("robust_report", s.report), ("robust_save_baseline", s.save_baseline),
                       ("robust_markdown", s.markdown), ("robust_html", s.html),
                       ("robust_update_baseline", s.update_baseline)):
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
