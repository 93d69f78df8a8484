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


KILLABLE = """
import os, pytest, torch

ROWS = [0]

class Counting(torch.nn.Module):
    # ROBTEST_DIE_AT=k: the process dies (no cleanup, like a preempted CI job) once k rows went through
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        with torch.no_grad():
            self.net[1].weight.copy_(torch.randn(3, 16, generator=g))
            self.net[1].bias.zero_()

    def forward(self, x):
        ROWS[0] += x.shape[0]
        if ROWS[0] > int(os.environ.get("ROBTEST_DIE_AT") or 10**12):
            os._exit(3)
        return self.net(x)

def pytest_sessionfinish(session):
    with open("rows.txt", "w") as f:
        f.write(str(ROWS[0]))

@pytest.fixture(scope="session")
def robust_model():
    return Counting().eval()

@pytest.fixture(scope="session")
def robust_data():
    x = torch.rand(600, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, Counting()(x).argmax(1)
"""


def test_a_killed_evaluation_resumes_with_the_numbers_of_an_uninterrupted_one(pytester: pytest.Pytester,
                                                                              monkeypatch: pytest.MonkeyPatch):
    pytester.makeconftest(KILLABLE)
    pytester.makepyfile(test_long="""
        import pytest

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.1, floor=0.1, steps=20, sequential=False, batch_size=32)
        def test_long():
            pass
    """)
    monkeypatch.delenv("ROBTEST_DIE_AT", raising=False)

    def run(*args: str) -> tuple[pytest.RunResult, int]:
        result = pytester.runpytest_subprocess("--robust", "--robust-report=out.json", *args, timeout=600)
        rows = pytester.path / "rows.txt"
        count = int(rows.read_text()) if rows.exists() else -1
        rows.unlink(missing_ok=True)
        return result, count

    whole, whole_rows = run()  # uninterrupted, no cache
    whole.assert_outcomes(passed=1)
    reference = json.loads((pytester.path / "out.json").read_text())["records"][0]["measurement"]
    (pytester.path / "out.json").unlink()
    monkeypatch.setenv("ROBTEST_DIE_AT", str(whole_rows // 2))
    killed, _ = run("--robust-cache=on")
    assert killed.ret == 3 and not (pytester.path / "out.json").exists()  # died mid-evaluation
    partial = list((pytester.path / ".pytest_cache" / "d" / "robtest-measurements").glob("*.partial.*.pt"))
    assert len(partial) == 1
    monkeypatch.delenv("ROBTEST_DIE_AT")
    resumed, resumed_rows = run("--robust-cache=on")
    resumed.assert_outcomes(passed=1)
    got = json.loads((pytester.path / "out.json").read_text())["records"][0]
    assert got["measurement"] == reference and not got.get("cached")
    assert 0 < resumed_rows < 0.75 * whole_rows, (resumed_rows, whole_rows)  # the finished half was not redone
    assert not partial[0].exists()  # done: the checkpoint is gone, the measurement cached
    again, again_rows = run("--robust-cache=on")
    # cached: the model ran only for the data fixture's 600 labels and robtest's 2-sample output probe
    assert json.loads((pytester.path / "out.json").read_text())["records"][0].get("cached") and again_rows == 602
