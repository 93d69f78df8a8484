"""--robust-cache: an unchanged property is not evaluated again (its measurement comes from pytest's cache folder
and is judged afresh); a changed model (weights or code), setting or data never reuses one; clear empties it."""

from __future__ import annotations

import json

import pytest

TESTS = """
import pytest

@pytest.mark.accuracy_floor(attack="pgd", eps=0.05, floor=0.2, steps=5)
def test_floor():
    pass

@pytest.mark.lipschitz(max=100.0, samples=20)
def test_lipschitz():
    pass

def test_in_body(robust):
    robust.accuracy(attack="fgsm", eps=0.05)
"""

SCALED = """
import pytest, torch

class Scaled(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) * SCALE

@pytest.fixture(scope="session")
def robust_model(robust_model):
    return Scaled(robust_model).eval()
"""


def _run(p: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[dict]]:
    result = p.runpytest("--robust", "--robust-report=out.json", *args)
    return result, json.loads((p.path / "out.json").read_text(encoding="utf-8"))["records"]


def _numbers(records: list[dict]) -> list[tuple]:
    return [(r["id"], r["measurement"]["value"], r["measurement"]["low"], r["measurement"]["high"],
             r["measurement"]["n"], r["measurement"]["details"].get("outcomes")) for r in records]


def test_a_rerun_reuses_every_unchanged_measurement(project: pytest.Pytester):
    project.makepyfile(test_gate=TESTS)
    first, a = _run(project, "--robust-cache=on")
    first.assert_outcomes(passed=3)
    assert not any(r.get("cached") for r in a)
    second, b = _run(project, "--robust-cache=on")
    second.assert_outcomes(passed=3)
    assert all(r.get("cached") for r in b) and _numbers(a) == _numbers(b)
    second.stdout.fnmatch_lines(["*test_floor*accuracy_floor*pass (cached)*"])
    # judged afresh: the same measurement under another rule gets that rule's verdict
    _, c = _run(project, "--robust-cache=on", "--robust-rule=confident")
    assert all(r.get("cached") for r in c) and c[0]["rule"] == "confident" and _numbers(c) == _numbers(a)
    # off (the default): evaluated every time
    _, d = _run(project)
    assert not any(r.get("cached") for r in d) and _numbers(d) == _numbers(a)


def test_a_changed_setting_weights_or_data_is_evaluated_again(project: pytest.Pytester):
    project.makepyfile(test_gate=TESTS)
    _run(project, "--robust-cache=on")
    project.makepyfile(test_gate=TESTS.replace("eps=0.05, floor", "eps=0.06, floor"))
    _, changed = _run(project, "--robust-cache=on")
    assert [bool(r.get("cached")) for r in changed] == [False, True, True]  # only the floor changed
    _, seeded = _run(project, "--robust-cache=on", "--robust-seed=1")
    assert not any(r.get("cached") for r in seeded)
    _, fewer = _run(project, "--robust-cache=on", "--robust-samples=30")
    assert [bool(r.get("cached")) for r in fewer] == [False, True, False]  # lipschitz names its own samples=20
    # other weights: the same architecture, one weight changed
    project.makeconftest(project.path.joinpath("conftest.py").read_text().replace("m[1].bias.zero_()",
                                                                                  "m[1].bias.fill_(0.01)"))
    _, weights = _run(project, "--robust-cache=on")
    assert not any(r.get("cached") for r in weights)


def test_a_changed_forward_with_the_same_weights_is_evaluated_again(project: pytest.Pytester):
    project.makepyfile(test_gate=TESTS, conftest_scaled=SCALED.replace("SCALE", "1.0"))
    project.makepyfile(test_gate=TESTS.replace("import pytest\n", "import pytest\nfrom conftest_scaled import "
                                               "robust_model  # noqa\n", 1))
    _, a = _run(project, "--robust-cache=on")
    _, b = _run(project, "--robust-cache=on")
    assert all(r.get("cached") for r in b)
    project.makepyfile(conftest_scaled=SCALED.replace("SCALE", "2.0"))  # same weights, another forward
    _, c = _run(project, "--robust-cache=on")
    assert not any(r.get("cached") for r in c)


def test_clear_empties_the_cache_and_no_cacheprovider_still_works(project: pytest.Pytester):
    project.makepyfile(test_gate=TESTS)
    _run(project, "--robust-cache=on")
    _, cleared = _run(project, "--robust-cache=clear")
    assert not any(r.get("cached") for r in cleared)
    _, again = _run(project, "--robust-cache=on", "-p", "no:cacheprovider")  # the same folder, found by hand
    assert all(r.get("cached") for r in again)
    assert list((project.path / ".pytest_cache" / "d" / "robtest-measurements").glob("*.json"))
    bad = project.runpytest("--robust", "--robust-cache=maybe")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*expected off, on or clear but got 'maybe'*"])
