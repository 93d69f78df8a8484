"""Every property marker through pytest: a passing and a failing case, the summary, and the keyword check."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch  # noqa: F401  (pytester's in-process runs must not re-import torch)

import robtest.properties  # noqa: F401
import robtest.session  # noqa: F401

CONFTEST = textwrap.dedent(
    """
    import pytest, torch
    from robtest.data import digits_tensors

    @pytest.fixture(scope="session")
    def robust_model():
        # nearest-class-mean softmax regression on the digits: about 90% clean accuracy, no training
        x, y = digits_tensors("train")
        mu = torch.stack([x[y == c].flatten(1).mean(0) for c in range(10)])
        m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        with torch.no_grad():
            m[1].weight.copy_(20 * mu)
            m[1].bias.copy_(-10 * (mu ** 2).sum(1))
        return m.eval()
    """
)

TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.confidence_ceiling(ceiling=0.99, source="uniform", samples=60)
    def test_confidence_pass():
        pass

    @pytest.mark.confidence_ceiling(ceiling=0.3, source="uniform", samples=60)
    def test_confidence_fail():
        pass

    @pytest.mark.offset_invariance(max_drop=1.0, samples=100)
    def test_offset_pass():
        pass

    @pytest.mark.offset_invariance(max_drop=0.01, samples=100)
    def test_offset_fail():
        pass

    @pytest.mark.power_law(exponent=(0.5, 3.0), eps=(0.003, 0.1), points=5, max_error=0.7, samples=150)
    def test_power_law_pass():
        pass

    @pytest.mark.power_law(exponent=(3.0, 4.0), eps=(0.003, 0.1), points=5, max_error=0.7, samples=150)
    def test_power_law_fail():
        pass

    @pytest.mark.lipschitz(max=1e6, steps=3, samples=20)
    def test_lipschitz_pass():
        pass

    @pytest.mark.lipschitz(max=1e-3, estimate="global")
    def test_lipschitz_fail():
        pass

    @pytest.mark.min_perturbation(floor=0.0, samples=20, bisections=6)
    def test_min_perturbation_pass():
        pass

    @pytest.mark.min_perturbation(floor=0.9, samples=20, bisections=6)
    def test_min_perturbation_fail():
        pass

    @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.5, batch_size=64)
    def test_floor_sequential():
        pass

    @pytest.mark.lipschitz(max=1.0, colour="red")
    def test_unknown_key():
        pass
    """
)


def test_markers_pass_fail_summary_and_keyword_check(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_props=TESTS)
    report = pytester.path / "report.json"
    result = pytester.runpytest("--robust", "-p", "no:cacheprovider", f"--robust-report={report}")
    outcomes = {r.nodeid.split("::")[-1]: r.outcome
                for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call"}
    expected = {name: ("passed" if name.endswith(("_pass", "_sequential")) else "failed")
                for name in outcomes}
    assert outcomes == expected and len(outcomes) == 12
    result.stdout.fnmatch_lines([
        "*confidence 0.* (95% CI *, n=*) on uniform noise, is above the ceiling 0.3*",
        "*accuracy drop 0.* under the worst offset in [[]-0.5, 0.5[]]*is above the ceiling 0.01*",
        "*power-law exponent * is outside the range [[]3, 4[]]*",
        "*Lipschitz bound * is above the ceiling 0.001*",
        "*empirical robustness * is below the floor 0.9*",
        "*@lipschitz does not take colour; it accepts: max, estimate, radius, steps, samples, batch_size, seed, "
        "confidence, rule*",
    ])
    result.stdout.fnmatch_lines(["*robustness summary*", "*test_power_law_pass*power_law*in [[]0.5, 3[]]*pass*"])
    records = {r["test"].split("::")[-1]: r for r in json.loads(report.read_text())["records"]}
    for name, rec in records.items():
        m = rec["measurement"]
        assert m["low"] <= m["value"] <= m["high"] or m["low"] == m["high"], name
        assert rec["threshold"] is not None and rec["threshold_text"] and rec["verdict"] in ("pass", "FAIL")
    floor = records["test_floor_sequential"]["measurement"]
    # 540 digits in batches of 64: looks at 64, 128, 256, 512, 540; ~90% accuracy clears 0.5 at the first look
    assert floor["details"]["sequential"] and floor["details"]["samples_used"] == floor["n"] == 64
    assert floor["details"]["samples_planned"] == 540 and floor["low"] > 0.5
