"""The robustness summary's collector and writers: every test report's records (local, or from xdist workers
and torchrun ranks) gathered on the controller, which alone prints the table and writes the JSON report, the
HTML report, the Markdown summary and the baseline.

The words and rows come from :mod:`robtest.summary`, the page from :mod:`robtest.html_report`. This module
imports only pytest, the standard library and robtest's torch-free modules.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from robtest import distributed
from robtest.baseline import BASELINE_SCHEMA, baseline_entry
from robtest.html_report import write_html
from robtest.options import BASELINE, OPTIONS, STARTED
from robtest.property_table import PROPERTIES
from robtest.summary import (
    BAD,
    PASSING,
    SUMMARY_WIDTH,
    diagnostic_lines,
    junit_json,
    markdown_summary,
    summary_rows,
    table_lines,
)

__all__ = ["Reporter", "run_metadata", "save_run", "unused_records"]


class Reporter:
    """Collects the records of every test's report (local or from xdist workers), prints the table and writes
    the JSON report and the baseline; on the controller only."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[dict[str, Any]] = []
        self.failed_tests: set[str] = set()
        self.ran_tests: set[str] = set()  # node ids whose body ran: their baseline records are theirs to keep

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self._collect(report)
            self.ran_tests.add(report.nodeid)
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
        if not (self.config.stash[OPTIONS].enabled and distributed.active()):
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
        s = self.config.stash[OPTIONS]
        records = self.ordered()
        if s.history:  # first: the HTML report's trend includes this run
            saved = save_run(s.history, {"schema": "robtest-report/1", "run": run_metadata(self.config, records),
                                         "records": records})
            terminalreporter.write_line(f"robtest: run saved as {saved}")
        if s.report or s.html:
            report = {"schema": "robtest-report/1", "run": run_metadata(self.config, records), "records": records}
            if s.report:
                Path(s.report).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            if s.html:
                write_html(json.loads(json.dumps(report, default=repr)), s.html)
                terminalreporter.write_line(f"robtest: HTML report written to {s.html}")
        if s.save_baseline or s.update_baseline:
            entries = {r["id"]: baseline_entry(r) for r in records
                       if r.get("id") and not getattr(PROPERTIES.get(r["property"]), "search", False)}
            run = run_metadata(self.config, records)
            path = s.save_baseline or s.update_baseline
            if s.update_baseline:
                entries, said = _updated(s.update_baseline, entries, self.ran_tests)
            else:
                said = f"baseline of {len(entries)} records written to {path}"
            base = {"schema": BASELINE_SCHEMA, "robtest": run["robtest"], "run": run, "records": entries}
            Path(path).write_text(json.dumps(base, ensure_ascii=False, separators=(",", ":")) + "\n",
                                  encoding="utf-8")
            terminalreporter.write_line(f"robtest: {said}")
        if s.baseline:
            unused = unused_records(self.config.stash[BASELINE]["records"], records, self.ran_tests)
            if unused:
                terminalreporter.write_line(
                    f"robtest: {len(unused)} baseline record(s) that no test produced although their test ran: "
                    + ", ".join(unused) + f"; --robust-update-baseline {s.baseline} removes them", yellow=True)
        if s.markdown:
            Path(s.markdown).write_text(markdown_summary(s, records), encoding="utf-8")
        if not records:
            return
        rows = summary_rows(records)
        tr = terminalreporter
        tr.write_sep("=", "robustness summary")
        for i, lines in enumerate(table_lines(rows, width=max(SUMMARY_WIDTH, tr._tw.fullwidth))):
            verdict = rows[i - 1][-1] if i else ""
            for line in lines:
                tr.write_line(line, bold=(i == 0), red=verdict.startswith(BAD), green=verdict.startswith(PASSING[0]))
        notes = diagnostic_lines(records)
        if notes:
            tr.write_line("indicators of attack failure (see the README's 'Indicators' section):")
            for line, allowed in notes:
                tr.write_line(line, red=not allowed, yellow=allowed)


def _owner(rec_id: str) -> str:
    """The test (node id) or shared fixture a record id belongs to: the id without its ``::property[#k]``."""
    return rec_id.rsplit("::", 1)[0]


def unused_records(baseline: dict[str, Any], records: list[dict[str, Any]], ran: set[str]) -> list[str]:
    """Baseline record ids that no record of this run has although their test ran (a property removed from a test,
    a test renamed within its file...): syrupy's unused snapshots. Records of tests that did not run (deselected,
    another file) are not unused.

    >>> unused_records({"t.py::a::accuracy_floor": {}, "t.py::b::lipschitz": {}, "u.py::c::lipschitz": {}},
    ...                [{"id": "t.py::a::accuracy_floor"}], {"t.py::a", "t.py::b"})
    ['t.py::b::lipschitz']
    """
    produced = {r.get("id") for r in records}
    return sorted(k for k in baseline if k not in produced and _owner(k) in ran)


def _updated(path: str, entries: dict[str, Any], ran: set[str]) -> tuple[dict[str, Any], str]:
    """The baseline at ``path`` (empty when missing) with this run's ``entries`` written over it, the records of
    tests that did not run kept, the unused ones of tests that ran removed; and the sentence that says so."""
    from robtest.baseline import load_baseline

    old = load_baseline(path)["records"] if Path(path).exists() else {}
    removed = unused_records(old, [{"id": k} for k in entries], ran)
    rewritten = sum(1 for k in entries if k in old)
    kept = {k: v for k, v in old.items() if k not in entries and k not in removed}
    merged = {**kept, **entries}
    return merged, (f"baseline {path} updated: {rewritten} record(s) rewritten, {len(entries) - rewritten} added, "
                    f"{len(removed)} removed (no longer produced: {', '.join(removed) or 'none'}), {len(kept)} kept "
                    "(their tests did not run)")


def save_run(folder: str, report: dict[str, Any]) -> str:
    """Write ``report`` under ``folder`` as ``NNNN_<commit12>_<UTC time>.json``, NNNN one more than the highest
    saved there (pytest-benchmark's layout); returns the path."""
    d = Path(folder)
    d.mkdir(exist_ok=True)
    numbers = [int(f.name[:4]) for f in d.glob("[0-9][0-9][0-9][0-9]_*.json")]
    run = report.get("run", {})
    commit = (run.get("git_commit") or "nocommit")[:12]
    stamp = (run.get("started") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())).replace(":", "")
    path = d / f"{max(numbers, default=0) + 1:04d}_{commit}_{stamp}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, separators=(",", ":"), default=repr) + "\n",
                    encoding="utf-8")
    return str(path)


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

    s = config.stash[OPTIONS]
    started = config.stash.get(STARTED, time.time())
    robtest_version = sys.modules["robtest"].__version__ if "robtest" in sys.modules else _version("robtest")
    meta = {
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
        **({"history": s.history} if s.history else {}),
    }
    config.hook.pytest_robtest_run_metadata(config=config, metadata=meta)  # users' own keys (robtest.hookspecs)
    return meta
