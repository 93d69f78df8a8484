"""The accuracy_floor marker and the robust fixture: pass, fail message, summary table, keyword checks."""

from __future__ import annotations

import json

import pytest


def test_pass_fail_and_summary(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack="fgsm", eps=0.0, floor=0.9)
        def test_holds():
            pass

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=5)
        def test_breaks():
            pass

        def test_by_hand(robust):
            assert robust.accuracy(attack="fgsm", eps=0.3) >= 0.99
        """
    )
    result = project.runpytest("--robust")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*accuracy 0.* (95% CI 0.*–0.*, n=60) under PGD L∞ ε=0.3, 5 steps, is below the floor 0.99*",
    ])
    # The hand-written assertion shows the whole measurement too.
    result.stdout.fnmatch_lines(["*assert accuracy 0.* (95% CI *, n=60) under FGSM L∞ ε=0.3 >= 0.99*"])
    result.stdout.fnmatch_lines([
        "*robustness summary*",
        "test*property*setting*measured*threshold*verdict*",
        "*test_holds*accuracy_floor*>= 0.9*pass*",
        "*test_breaks*accuracy_floor*PGD L∞ ε=0.3*>= 0.99*FAIL*",
        "*test_by_hand*accuracy*FGSM*(no threshold)*test failed*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_summary_shows_each_property_verdict_not_the_test_outcome(project: pytest.Pytester):
    # One test, two markers: the clean floor holds, the PGD floor does not; the test fails as a whole, but
    # each summary row (and report record) carries its own property's verdict.
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.9)
        @pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=5)
        def test_both():
            pass
        """
    )
    result = project.runpytest("--robust", "--robust-report=out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*robustness summary*",
        "*test_both*accuracy_floor*clean*>= 0.9*pass",
        "*test_both*accuracy_floor*PGD L∞ ε=0.3*>= 0.99*FAIL",
    ])
    records = json.loads((project.path / "out.json").read_text(encoding="utf-8"))["records"]
    assert [(r["measurement"]["value"] >= floor, r["verdict"]) for r, floor in zip(records, (0.9, 0.99), strict=True)
            ] == [(True, "pass"), (False, "FAIL")]


def test_unknown_marker_key_lists_accepted_ones(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.1, floor=0.5, stepz=3)
        def test_typo():
            pass

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.1)
        def test_missing_floor():
            pass

        @pytest.mark.accuracy_floor(attack="pgdd", eps=0.1, floor=0.5)
        def test_unknown_attack():
            pass
        """
    )
    result = project.runpytest("--robust")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*attack 'pgd' does not take 'stepz'; it accepts: norm, steps, step_size, random_start, restarts*",
        "*@accuracy_floor needs floor; it accepts: eps, floor, attack*",
        "*attack: expected one of apgd, apgd_t, auto, fgsm, pgd, rfgsm, square, step_ll, transfer but got 'pgdd'*",
    ])


def test_clean_floor_with_attack_none_and_rules(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.95)
        def test_clean():
            pass

        # 60/60 correct: the Wilson lower bound is about 0.94, so 'confident' fails at 0.95.
        @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.95, rule="confident")
        def test_confident():
            pass
        """
    )
    result = project.runpytest("--robust")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*is below the floor 0.95 (rule 'confident'*"])


def test_json_report(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack="fgsm", eps=0.01, floor=0.1)
        def test_a():
            pass
        """
    )
    project.runpytest("--robust", "--robust-report=out.json").assert_outcomes(passed=1)
    records = json.loads((project.path / "out.json").read_text(encoding="utf-8"))["records"]
    assert records[0]["test"].endswith("test_a") and records[0]["verdict"] == "pass"
    assert records[0]["measurement"]["n"] == 60


def test_missing_robust_model_says_what_to_do(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x(robust):\n    pass\n")
    result = pytester.runpytest("--robust")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*robtest needs a `robust_model` fixture: define one in conftest.py*"])


BROKEN_CONFTEST = """
import pytest, torch

@pytest.fixture(scope="session")
def robust_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3){head})

@pytest.fixture(scope="session")
def robust_data():
    g = torch.Generator().manual_seed(1)
    return {data}(10, 1, 4, 4, generator=g), torch.randint(0, 3, (10,), generator=g)
"""


@pytest.mark.parametrize("head,data,message", [
    (", torch.nn.Softmax(dim=1)", "torch.rand", "*SUSPECT evaluation of accuracy*cannot be trusted*"),
    ("", "torch.randn",
     "*InputError: x: expected values in the box [[]0, 1] but got min*looks like normal*"),
], ids=["probability-outputs", "normalised-data"])
def test_broken_evaluations_fail_with_the_reason(pytester: pytest.Pytester, head, data, message):
    pytester.makeconftest(BROKEN_CONFTEST.format(head=head, data=data))
    pytester.makepyfile("def test_x(robust):\n    robust.accuracy(attack='fgsm', eps=0.1)\n")
    result = pytester.runpytest("--robust")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    assert "_driver.py" not in result.stdout.str()  # the message, not a traceback through robtest


def test_sequential_stop_says_why_n_is_small(project: pytest.Pytester):
    # 200 points (the project's 60 are fewer than the first planned look, 64 samples); the looks are sample
    # counts, so the batch size (a performance knob) changes neither where it settles nor the numbers.
    project.makepyfile(
        """
        import pytest, torch
        from conftest import _model

        @pytest.fixture(scope="session")
        def robust_data():
            x = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                return x, _model()(x).argmax(1)

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=3)
        def test_breaks_early():
            pass
        """
    )
    lines = []
    for batch in ("8", "256"):
        result = project.runpytest("--robust", f"--robust-batch-size={batch}")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*(sequential: settled after 64 of 200 samples), is below the floor 0.99*"])
        lines.append([line for line in result.outlines if "settled after" in line])
    assert lines[0] == lines[1]
