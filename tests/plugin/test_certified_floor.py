"""The certified_floor marker and method: pass proven, FAIL shown, inconclusive in between (never a pass); the
bracket (certified and attacked accuracy, each with its interval, and the gap) in the summary, JSON, Markdown,
HTML and the baseline comparison.

The project's model is linear (``conftest.py`` here): CROWN is exact on it, so at ε=0.01 it certifies 54 of 60
points and PGD breaks the other 6; at ε=0.1 PGD leaves 20 of 60. A rounding front (``torch.round``, which the
bound engine cannot trace) certifies nothing while the attack leaves most points standing: the bracket is open.
"""

from __future__ import annotations

import json
import re

import pytest

TESTS = """
import pytest

@pytest.mark.certified_floor(eps=0.01, floor=0.5, attack="pgd", steps=5)
def test_proven():
    pass

@pytest.mark.certified_floor(eps=0.1, floor=0.9, attack="pgd", steps=5)
def test_shown():
    pass

def test_in_body(robust):
    v = robust.certified_floor(eps=0.01, floor=0.5, attack="pgd", steps=5, method="ibp")
    assert v.passed and v.status == "pass"
    m = v.measurement
    assert m.value <= m.details["attacked"]["value"]
"""


def _records(p: pytest.Pytester, name: str = "out.json") -> dict[str, dict]:
    return {r["id"].split("::", 1)[1]: r for r in json.loads((p.path / name).read_text(encoding="utf-8"))["records"]}


def test_pass_proven_and_fail_shown(project: pytest.Pytester):
    project.makepyfile(test_gate=TESTS)
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=out.json",
                               "--robust-markdown=out.md", "--robust-html=out.html")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*certified 0.333 [[]*], attacked 0.333 [[]*], gap 0.000: the attacked accuracy is below the floor 0.9, "
        "shown by real examples*",
    ])
    recs = _records(project)
    proven, shown = recs["test_proven::certified_floor"], recs["test_shown::certified_floor"]
    assert proven["verdict"] == "pass" and "the certified accuracy meets the floor 0.5, proven" in proven["bracket"]
    assert shown["verdict"] == "FAIL"
    d = proven["measurement"]["details"]
    # the three outcomes add up, and the certified count is the one CROWN gives on this linear model
    three = d["outcomes3"]
    assert d["certified"] == three.count(1) == 54 and three.count(-1) == 6 and d["unknown"] == 0
    assert proven["measurement"]["value"] == pytest.approx(54 / 60)
    att = d["attacked"]
    assert att["low"] <= att["value"] <= att["high"] and att["value"] >= proven["measurement"]["value"]
    assert d["gap"] == pytest.approx(att["value"] - proven["measurement"]["value"])
    # the summary row shows both numbers
    md = (project.path / "out.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if "test_proven" in line)
    assert re.search(r"0\.900 \[0\.\d{3}–0\.\d{3}\] n=60; attacked 0\.900 \[0\.\d{3}–0\.\d{3}\], gap 0\.000", row)
    assert row.endswith("| >= 0.5 | pass |")
    page = (project.path / "out.html").read_text(encoding="utf-8")
    assert "crown proof vs pgd (n=60)" in page and "ibp proof vs pgd (n=60)" in page


def test_a_masked_model_is_never_passed(project: pytest.Pytester):
    """Rounding masks the gradients (the attack leaves most points) and the bound engine cannot go through it:
    the verdict is inconclusive, the attack's indicators are shown but do not decide it, the test fails."""
    project.makepyfile(test_masked="""
        import pytest, torch

        class Round(torch.nn.Module):
            def forward(self, x):
                return torch.round(x * 8) / 8   # a quantising front: zero gradients, and no bound through it

        @pytest.fixture(scope="module")
        def robust_model(robust_model):  # the project's linear model behind the front
            return torch.nn.Sequential(Round(), robust_model).eval()

        @pytest.mark.certified_floor(eps=0.05, floor=0.3, attack="pgd", steps=5)
        def test_masked():
            pass
    """)
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=out.json")
    result.assert_outcomes(failed=1)
    rec = _records(project)["test_masked::certified_floor"]
    assert rec["verdict"] == "inconclusive"
    d = rec["measurement"]["details"]
    assert d["certified"] == 0 and "'round'" in d["unsupported"] and d["attacked"]["value"] > 0.3
    result.stdout.fnmatch_lines(["*the floor 0.3 lies between the two, so neither a proof nor a counterexample "
                                 "settles it*the attack's indicators fired: zero_gradients*"])


def test_the_baseline_keeps_and_compares_the_attacked_side(project: pytest.Pytester):
    project.makepyfile(test_gate="""
        import pytest

        @pytest.mark.certified_floor(eps=0.03, floor=0.3, attack="pgd", steps=5)
        def test_gate():
            pass
    """)
    saved = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-save-baseline=base.json")
    saved.assert_outcomes(passed=1)
    base = json.loads((project.path / "base.json").read_text(encoding="utf-8"))
    entry = next(iter(base["records"].values())) if isinstance(base["records"], dict) else base["records"][0]
    assert set(entry["attacked"]) == {"value", "low", "high"} and entry["gap"] >= 0
    again = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                              "--robust-report=out.json")
    again.assert_outcomes(passed=1)
    b = _records(project)["test_gate::certified_floor"]["baseline"]
    assert b["status"] == "ok" and b["attacked"] == b["baseline_attacked"] == entry["attacked"]["value"]
    assert re.search(r"attacked 0\.\d+ now vs 0\.\d+ in the baseline, gap 0\.\d+ now vs 0\.\d+", b["message"])
