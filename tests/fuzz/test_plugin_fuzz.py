"""Fuzzing through the plugin: the @fuzz marker, @given with the robust fixture, --robust-artifacts and
--robust-budget (pytester runs of a user's project)."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch  # noqa: F401  (pytester's in-process runs must not re-import torch)
import torchvision  # noqa: F401

import robtest.session  # noqa: F401

CONFTEST = textwrap.dedent(
    """
    import pytest, torch
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    def pytest_configure(config):
        # this project's own example database (pytester runs in-process: put the previous profile back after)
        config.previous_profile = settings._current_profile
        db = DirectoryBasedExampleDatabase(str(config.rootpath / ".hypothesis" / "examples"))
        settings.register_profile("project", parent=settings.default, database=db)
        settings.load_profile("project")

    def pytest_unconfigure(config):
        settings.load_profile(config.previous_profile)

    class Bright(torch.nn.Module):
        # class 1 when the mean brightness passes 0.4; the data's brightest image is at 0.3
        def forward(self, x):
            s = (x.mean((1, 2, 3)) - 0.4) * 100
            return torch.stack([-s, s], 1)

    @pytest.fixture(scope="session")
    def robust_model():
        return Bright()

    @pytest.fixture(scope="session")
    def robust_data():
        v = torch.tensor([0.2, 0.25, 0.3, 0.3, 0.25, 0.2])
        return v.view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone(), torch.zeros(6, dtype=torch.long)
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    return pytester


def test_fuzz_marker_fails_with_the_smallest_offset_and_passes_below_it(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.fuzz(strategy="offsets", max_examples=40)
        def test_breaks():
            pass

        @pytest.mark.fuzz(strategy="offsets", max_offset=0.05, max_examples=20)
        def test_holds():
            pass

        @pytest.mark.fuzz(strategy="offsets", max_examples=40, max_flips=2)
        def test_two_allowed():
            pass
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=report.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*fuzz offsets: * examples (budget 40): smallest failing perturbation found: offset +0.102 on every "
        "pixel flips 2 of 6 points (0→1 ×2; indices *2, 3*; first failure at example *, then shrunk",
        "*images: *robtest-artifacts*test_breaks*",
    ])
    # with two flips allowed, the smallest failure needs the next images, 0.15 below the threshold
    result.stdout.fnmatch_lines(["*offset +0.153 on every pixel flips 4 of 6 points*(at most 2 allowed)*"])
    result.stdout.fnmatch_lines(["*robustness summary*", "*test_breaks*fuzz*offsets*<= 0 flips*FAIL*",
                                 "*test_holds*fuzz*(offsets*<= 0 flips*pass*"])
    (folder,) = (project.path / "robtest-artifacts").glob("*.py_test_breaks")
    assert (folder / "difference.png").is_file()
    assert json.loads((folder / "failure.json").read_text())["description"] == "offset +0.102 on every pixel"
    rec = json.loads((project.path / "report.json").read_text())["records"]
    assert {r["property"] for r in rec} == {"fuzz"}

    # the next run replays the saved failures first
    again = project.runpytest("--robust", "-p", "no:cacheprovider")
    again.assert_outcomes(passed=1, failed=2)
    again.stdout.fnmatch_lines(["*fuzz offsets: * examples (budget 40): smallest failing perturbation found: "
                                "offset +0.102 on every pixel flips 2 of 6 points*; a failure saved in the example "
                                "database failed again first"])


def test_marker_checks_the_strategy_and_its_options(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.fuzz(strategy="offsets", eps=0.1)
        def test_wrong_option():
            pass

        @pytest.mark.fuzz(strategy="brightness")
        def test_unknown():
            pass

        @pytest.mark.fuzz(max_examples=3)
        def test_missing():
            pass
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*strategy offsets: does not take eps; it accepts: max_offset, resolution*"])
    result.stdout.fnmatch_lines(["*strategy: expected one of * offsets, * but got 'brightness'*"])
    result.stdout.fnmatch_lines(["*@fuzz needs strategy; it accepts: strategy, max_examples, budget, max_flips*"])


def test_given_with_the_robust_fixture(project: pytest.Pytester):
    project.makepyfile(
        """
        from hypothesis import given
        import robtest.strategies as rst

        @given(delta=rst.offsets(max_offset=0.3))
        def test_stable(robust, delta):
            robust.assert_invariant(delta)

        @given(delta=rst.offsets(max_offset=0.05))
        def test_small_offsets(robust, delta):
            robust.assert_invariant(delta)
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-artifacts=art")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*HealthCheck*")
    result.stdout.fnmatch_lines(["*InvarianceError: offset +0.102 on every pixel flips 2 of 6 points*",
                                 "*images: *art*test_stable*"])
    (folder,) = (project.path / "art").glob("*.py_test_stable")
    assert sorted(p.name for p in folder.iterdir()) == ["difference.png", "failure.json", "original.png",
                                                        "perturbed.png"]
    # only the final, minimal example wrote its images
    assert json.loads((folder / "failure.json").read_text())["description"] == "offset +0.102 on every pixel"
    assert [p.name for p in (project.path / "art").iterdir()] == [folder.name]


def test_skipped_without_robust(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest
        from hypothesis import given
        import robtest.strategies as rst

        @pytest.mark.fuzz(strategy="offsets")
        def test_marker():
            pass

        @given(delta=rst.offsets())
        def test_given(robust, delta):
            robust.assert_invariant(delta)
        """
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=2)


def test_budget_option(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.fuzz(strategy="offsets", max_offset=0.05)
        def test_holds():
            pass
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-budget=quick", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_holds*fuzz*offsets, 25 examples*pass*"])
    bad = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-budget=huge")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--robust-budget*expected one of quick, default, thorough but got 'huge'*"])
