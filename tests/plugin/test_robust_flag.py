"""--robust: robustness tests are skipped without it, run with it (or with the ini equivalent)."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

@pytest.mark.accuracy_floor(attack="fgsm", eps=0.01, floor=0.5)
def test_marker():
    pass

def test_fixture(robust):
    assert robust.accuracy() >= 0.99

@pytest.mark.robust
def test_marked():
    pass

def test_ordinary():
    pass
"""


def test_skipped_without_robust_with_a_reason_naming_the_flag(project: pytest.Pytester):
    project.makepyfile(TESTS)
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*robustness test: run with pytest --robust*"])


def test_run_with_robust(project: pytest.Pytester):
    project.makepyfile(TESTS)
    project.runpytest("--robust").assert_outcomes(passed=4)


def test_ini_enables_robust(project: pytest.Pytester):
    project.makeini("[pytest]\nrobust = true\n")
    project.makepyfile(TESTS)
    project.runpytest().assert_outcomes(passed=4)


def test_plain_run_does_not_import_torch(pytester: pytest.Pytester):
    pytester.makeconftest(
        "import sys\n"
        "def pytest_sessionfinish(session):\n"
        "    print('TORCH_LOADED', 'torch' in sys.modules)\n"
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-s")
    result.stdout.fnmatch_lines(["*TORCH_LOADED False*"])
