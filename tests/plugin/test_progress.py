"""--robust-progress: long evaluations say how far they are, past pytest's capture; -qq and off silence it."""

from __future__ import annotations

import re

import pytest

FAST = """
import pytest
from robtest.session import RobustSession

@pytest.fixture(autouse=True)
def _show_progress_at_once(monkeypatch):
    # the plugin shows evaluations longer than 2 s; these tests make it show every batch of a quick one
    monkeypatch.setattr(RobustSession, "progress_delay", 0.0)
    monkeypatch.setattr(RobustSession, "progress_interval", 0.0)
"""

TESTS = """
import pytest

@pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.0, sequential=False)
def test_floor():
    pass
"""


@pytest.fixture
def slow_project(project: pytest.Pytester) -> pytest.Pytester:
    conftest = project.path / "conftest.py"
    conftest.write_text(conftest.read_text(encoding="utf-8") + FAST, encoding="utf-8")
    project.makepyfile(TESTS)
    return project


def _progress_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.errlines if "robtest: " in line and " samples" in line]


def test_progress_shows_samples_rate_and_time_left(slow_project: pytest.Pytester):
    result = slow_project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "--robust-batch-size=16")
    result.assert_outcomes(passed=1)
    lines = _progress_lines(result)
    node = "test_progress_shows_samples_rate_and_time_left.py::test_floor::accuracy_floor"
    # 60 samples in batches of 16: 16, 32, 48, 60, then the closing line
    done = [int(re.search(r": (\d+)/60 samples", line).group(1)) for line in lines]
    assert done == [16, 32, 48, 60, 60], lines
    assert all(line.startswith(f"robtest: {node}: ") for line in lines)
    assert "s left" in lines[0] and lines[-1].endswith(" s") and "done in" in lines[-1]


@pytest.mark.parametrize("args", [("-qq",), ("--robust-progress=off",)], ids=["-qq", "off"])
def test_progress_can_be_silenced(slow_project: pytest.Pytester, args: tuple[str, ...]):
    result = slow_project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "--robust-batch-size=16", *args)
    assert result.ret == pytest.ExitCode.OK  # -qq prints no outcome line to parse
    assert _progress_lines(result) == []


def test_progress_under_xdist_names_the_worker(slow_project: pytest.Pytester):
    result = slow_project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "--robust-batch-size=16",
                                               "-n", "1")
    result.assert_outcomes(passed=1)
    lines = _progress_lines(result)
    assert lines and all(line.startswith("[gw0] robtest: ") for line in lines)


def test_a_sequential_evaluation_is_one_pass_whatever_its_looks():
    """The looks (64, 128, 256 samples) cut the reads into stretches: progress still counts one pass of all the
    samples, not a new "pass" per stretch."""
    import torch

    from robtest import progress
    from robtest.evaluate import evaluate_accuracy
    from robtest.properties.sequential import SequentialCheck

    class EveryLook(SequentialCheck):  # takes every planned look, never stops
        def __call__(self, total: float, seen: int) -> bool:
            super().__call__(total, seen)
            return False

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x = torch.rand(300, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    lines: list[str] = []
    with progress.task("t", lines.append, delay=0.0, interval=0.0):
        evaluate_accuracy(model, (x, y), attack="fgsm", eps=0.05, batch_size=50, device="cpu", checks=False,
                          stop=EveryLook(n_total=300, threshold=0.5, comparison=">="))
    done = [int(re.search(r": (\d+)/300 samples", line).group(1)) for line in lines]
    assert done == sorted(done) and done[-1] == 300, lines
    assert not any("pass" in line for line in lines), lines
