"""A suspect evaluation fails its test under --robust, whatever the warning filters say; allow= is explicit
and shown in the summary."""

from __future__ import annotations

import json

import pytest

CONFTEST = """
import pytest, torch

class Noisy(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x + 0.3 * torch.randn_like(x))

@pytest.fixture(scope="session")
def robust_model():
    torch.manual_seed(0)
    return Noisy(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)))

@pytest.fixture(scope="session")
def robust_data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(40, 1, 4, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
"""

TESTS = """
import pytest

@pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.0)
def test_marker():
    pass

def test_in_body(robust):
    robust.accuracy(attack="fgsm", eps=0.05)

@pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.0, allow=("randomized",))
def test_allowed():
    pass
"""

FILTERS = {
    "ini-ignore-userwarning": ([], "filterwarnings =\n    ignore::UserWarning\n"),
    "W-ignore": (["-W", "ignore"], ""),
    "no-warnings-plugin": (["-p", "no:warnings"], ""),
    "W-error-on-others": (["-W", "error::DeprecationWarning"], ""),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_suspect_fails_whatever_the_warning_filters(pytester: pytest.Pytester, name):
    args, ini = FILTERS[name]
    pytester.makeconftest(CONFTEST)
    pytester.makeini(f"[pytest]\n{ini}")
    pytester.makepyfile(test_x=TESTS)
    report = pytester.path / "out.json"
    result = pytester.runpytest("--robust", f"--robust-report={report}", *args)
    result.assert_outcomes(failed=2, passed=1)
    out = result.stdout.str()
    assert "SUSPECT evaluation of accuracy_floor" in out and "SUSPECT evaluation of accuracy under FGSM" in out
    assert "randomized: two forward passes" in out and "allow=('randomized',)" in out
    result.stdout.fnmatch_lines(["*test_x.py::test_marker *suspect", "*test_x.py::test_in_body *suspect",
                                 "*test_x.py::test_allowed *pass (allowed: randomized)"])
    records = {r["test"].split("::")[1]: r for r in json.loads(report.read_text())["records"]}
    assert records["test_marker"]["verdict"] == "suspect" and records["test_in_body"]["verdict"] == "suspect"
    assert records["test_allowed"]["verdict"] == "pass"
    diag = records["test_marker"]["measurement"]["diagnostics"][0]
    assert diag["indicator"] == "randomized" and diag["allowed"] is False and diag["evidence"]["max_difference"] > 0


def test_unknown_indicator_in_allow_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("""
import pytest

@pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.0, allow=("noisy",))
def test_x():
    pass
""")
    result = pytester.runpytest("--robust")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*allow: expected indicator names among randomized, *but got 'noisy'*"])
