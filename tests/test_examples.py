"""examples/digits_release: the example model repo's CI workflow, run as written (through pytester)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits_release"


def _workflow_command() -> list[str]:
    """The pytest command of the workflow's gate step (a folded `run: >` block)."""
    lines = (EXAMPLE / ".github" / "workflows" / "robustness.yml").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if "robustness gate against the last release" in line)
    assert lines[start + 1].strip() == "run: >"
    block = []
    for line in lines[start + 2:]:
        if not line.startswith(" " * 10):
            break
        block.append(line.strip())
    return shlex.split(" ".join(block))


@pytest.fixture
def repo(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    return pytester


def _run(repo: pytest.Pytester, version: str, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    args = _workflow_command()
    assert args[0] == "pytest" and "--robust-baseline" in args
    args = [a.replace("$GITHUB_STEP_SUMMARY", "summary.md") for a in args[1:]]
    monkeypatch.setenv("MODEL_VERSION", version)
    return repo.runpytest_subprocess(*args, "-p", "no:cacheprovider")


def test_the_release_passes_against_its_own_baseline(repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    result = _run(repo, "v1", monkeypatch)
    result.assert_outcomes(passed=3)
    report = json.loads((repo.path / "robtest-report.json").read_text(encoding="utf-8"))
    assert [r["baseline"]["status"] for r in report["records"]] == ["ok", "ok", "ok"]
    assert all(r["baseline"]["lost"] == 0 and r["baseline"]["gained"] == 0 for r in report["records"]
               if r["baseline"].get("method") == "mcnemar")
    assert (repo.path / "robtest-report.html").stat().st_size > 10_000
    assert (repo.path / "summary.md").read_text(encoding="utf-8").startswith("## Robustness summary")


def test_a_less_robust_candidate_is_caught_although_it_clears_the_floors(repo: pytest.Pytester,
                                                                       monkeypatch: pytest.MonkeyPatch):
    result = _run(repo, "v2", monkeypatch)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["regression of tests/test_robustness.py::test_robust_accuracy::accuracy_floor: "
                                 "accuracy 0.38 now vs 0.745 in the baseline on the same 200 samples: 74 lost, "
                                 "1 gained (one-sided exact McNemar p=2.01e-21, alpha 0.05)"])
    report = json.loads((repo.path / "robtest-report.json").read_text(encoding="utf-8"))
    robust = next(r for r in report["records"] if r["id"].endswith("test_robust_accuracy::accuracy_floor"))
    assert robust["verdict"] == "pass"  # the absolute floor 0.3 alone would have let v2 through
    assert robust["baseline"]["status"] == "regression"


def test_a_second_ci_run_reuses_every_measurement_and_a_new_model_none(repo: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch):
    assert "--robust-cache" in _workflow_command()
    _run(repo, "v1", monkeypatch).assert_outcomes(passed=3)
    first = json.loads((repo.path / "robtest-report.json").read_text(encoding="utf-8"))["records"]
    _run(repo, "v1", monkeypatch).assert_outcomes(passed=3)
    second = json.loads((repo.path / "robtest-report.json").read_text(encoding="utf-8"))["records"]
    assert not any(r.get("cached") for r in first) and all(r.get("cached") for r in second)
    assert [r["measurement"] for r in first] == [r["measurement"] for r in second]
    assert [r["baseline"]["status"] for r in second] == ["ok", "ok", "ok"]
    # the candidate's weights differ: nothing is reused, and its regressions are found again
    _run(repo, "v2", monkeypatch).assert_outcomes(passed=1, failed=2)
    third = json.loads((repo.path / "robtest-report.json").read_text(encoding="utf-8"))["records"]
    assert not any(r.get("cached") for r in third)
