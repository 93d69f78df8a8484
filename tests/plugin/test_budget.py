"""Budgets (max_seconds, max_samples, --robust-max-seconds): a verdict that has not settled when the budget
runs out is "inconclusive", never a pass."""

from __future__ import annotations

import json

import pytest


def _records(project: pytest.Pytester) -> dict[str, dict]:
    report = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    return {r["test"].split("::")[-1]: r for r in report["records"]}


def test_a_sample_budget_that_runs_out_before_the_verdict_settles_is_inconclusive(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        # clean accuracy is 1.0 by construction: the floor 0.99 is met at the point estimate on any sample,
        # but 12 samples cannot show it at 95% (the interval reaches below 0.99)
        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.99, max_samples=12)
        def test_short():
            pass

        # a floor far below: 12 samples settle it
        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.5, max_samples=12)
        def test_settled():
            pass

        # the budget covers the whole data: the rule reads the verdict as usual
        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.99, max_samples=1000)
        def test_whole():
            pass
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=r.json",
                               "--robust-batch-size=4")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*inconclusive: the budget max_samples=12 ran out after 12 of 60 samples, before "
                                 "the verdict settled: accuracy 1.000 (95% CI *, n=12)*straddles the >= 0.99*"])
    recs = _records(project)
    short = recs["test_short"]
    assert short["verdict"] == "inconclusive" and short["budget"] == "max_samples=12"
    assert short["measurement"]["n"] == 12 and short["measurement"]["low"] < 0.99
    assert recs["test_settled"]["verdict"] == "pass" and recs["test_settled"]["measurement"]["n"] <= 12
    assert recs["test_whole"]["verdict"] == "pass" and recs["test_whole"]["measurement"]["n"] == 60
    summary = [line for line in result.outlines if "::test_short " in line]
    assert summary and summary[0].endswith("inconclusive")


def test_a_time_budget_stops_the_evaluation(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest, torch

        @pytest.fixture(scope="session")
        def robust_data(robust_model):
            # 300 samples the model gets right: the sequential looks are at 64, 128, 256 and 300
            x = torch.rand(300, 1, 4, 4, generator=torch.Generator().manual_seed(2))
            with torch.no_grad():
                return x, robust_model(x).argmax(1)

        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.99)
        def test_run_budget():
            pass

        @pytest.mark.confidence_ceiling(ceiling=0.9, source="uniform", samples=64)
        def test_ceiling():
            pass
        """
    )
    # a run budget no evaluation can meet: each stops at its first look (64 samples, whatever the batch size)
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=r.json",
                               "--robust-batch-size=4", "--robust-max-seconds=1e-9")
    recs = _records(project)
    floor = recs["test_run_budget"]
    assert floor["verdict"] == "inconclusive" and floor["budget"] == "max_seconds=1e-09"
    assert floor["measurement"]["n"] == 64
    assert recs["test_ceiling"]["verdict"] in ("inconclusive", "pass", "FAIL")
    assert recs["test_ceiling"]["measurement"]["n"] < 64
    result.assert_outcomes(failed=1 + (recs["test_ceiling"]["verdict"] != "pass"))


@pytest.mark.parametrize("kwargs, expected", [
    ("max_seconds=0", "max_seconds: expected a number of seconds > 0 but got 0.0"),
    ("max_samples=0", "max_samples: expected an integer >= 1 but got 0"),
    ("max_samples=2.5", "max_samples: expected an integer >= 1 but got 2.5"),
], ids=["zero-seconds", "zero-samples", "float-samples"])
def test_bad_budgets_are_clear_errors(project: pytest.Pytester, kwargs: str, expected: str):
    project.makepyfile(
        f"""
        import pytest

        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.5, {kwargs})
        def test_bad():
            pass
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{expected}*"])


def test_run_budget_option_is_parsed(project: pytest.Pytester):
    result = project.runpytest("--robust", "--robust-max-seconds=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robust-max-seconds: expected a number of seconds > 0 such as 600 but got "
                                 "'soon'*"])
