"""--robust-markdown: the summary as a Markdown table for CI pages; the path checked at startup."""

from __future__ import annotations

import pytest


def test_markdown_summary(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.1)
        def test_a():
            pass

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=5)
        def test_b():
            pass
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-markdown=summary.md")
    result.assert_outcomes(passed=1, failed=1)
    text = (project.path / "summary.md").read_text(encoding="utf-8").splitlines()
    assert text[0] == "## Robustness summary"
    assert text[2].startswith("Rule point, confidence 0.95, seed 0, device cpu, data digits; 2 records, 1 not passing")
    assert text[4] == "| test | property | setting | measured [CI] n | threshold | verdict |"
    assert text[6].startswith("| test_markdown_summary.py::test_a | accuracy_floor | under FGSM L∞ ε=0.05 | ")
    assert text[6].endswith("| >= 0.1 | pass |") and text[7].endswith("| >= 0.99 | FAIL |")


def test_missing_folder_is_a_usage_error(project: pytest.Pytester):
    result = project.runpytest("--robust", "--robust-markdown=nodir/summary.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robust-markdown: the folder 'nodir' (for 'nodir/summary.md') does not exist*"])
