"""What pytest --robust does to hypothesis: no deadline, and --robust-budget's number of examples."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import settings

from robtest.errors import InvalidArgument
from robtest.fuzz import BUDGETS, budget_examples, configure_hypothesis, restore_hypothesis


@pytest.fixture
def strict_profile():
    before = settings._current_profile
    settings.register_profile("strict-for-test", deadline=200, max_examples=7)
    settings.load_profile("strict-for-test")
    yield
    settings.load_profile(before)


def test_deadline_off_and_budget_tier(strict_profile):
    previous = configure_hypothesis("quick")
    try:
        assert previous == "strict-for-test"
        assert settings.default.deadline is None
        assert settings.default.max_examples == BUDGETS["quick"] == 25
    finally:
        restore_hypothesis(previous)
    assert settings.default.deadline == datetime.timedelta(milliseconds=200)
    assert settings.default.max_examples == 7


def test_without_a_budget_only_the_deadline_changes(strict_profile):
    previous = configure_hypothesis(None)
    try:
        assert settings.default.deadline is None and settings.default.max_examples == 7
    finally:
        restore_hypothesis(previous)


def test_nothing_to_change_changes_nothing(strict_profile):
    settings.register_profile("relaxed-for-test", deadline=None)
    settings.load_profile("relaxed-for-test")
    assert configure_hypothesis(None) is None


def test_unknown_budget():
    with pytest.raises(InvalidArgument, match="budget: expected one of quick, default, thorough but got 'huge'"):
        budget_examples("huge")


def test_slow_model_does_not_trip_a_deadline(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        import time, pytest, torch
        from hypothesis import settings

        def pytest_configure(config):
            config.previous_profile = settings._current_profile
            settings.register_profile("strict", parent=settings.default, deadline=50, database=None)
            settings.load_profile("strict")

        def pytest_unconfigure(config):
            settings.load_profile(config.previous_profile)

        class Slow(torch.nn.Module):
            def forward(self, x):
                time.sleep(0.1)   # a GPU's first call, say
                return torch.stack([x.mean((1, 2, 3)), 1 - x.mean((1, 2, 3))], 1)

        @pytest.fixture(scope="session")
        def robust_model():
            return Slow()

        @pytest.fixture(scope="session")
        def robust_data():
            return torch.full((4, 1, 4, 4), 0.1), torch.ones(4, dtype=torch.long)
        """
    )
    pytester.makepyfile(
        """
        from hypothesis import given, settings
        import robtest.strategies as rst

        @settings(max_examples=3)
        @given(delta=rst.offsets(max_offset=0.1))
        def test_slow(robust, delta):
            robust.assert_invariant(delta)
        """
    )
    pytester.runpytest("--robust", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_profile_without_database_still_gets_one(tmp_path, monkeypatch):
    # A derandomize=True profile (CI's) has database=None; fuzz() must still have somewhere to replay from.
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    from robtest.fuzz import _PROFILE_DB, _database

    monkeypatch.chdir(tmp_path)
    settings.register_profile("robtest-no-db", database=None)
    previous = settings._current_profile
    settings.load_profile("robtest-no-db")
    try:
        db = _database(_PROFILE_DB)
    finally:
        settings.load_profile(previous)
    assert isinstance(db, DirectoryBasedExampleDatabase)
    db.save(b"k", b"v")
    assert (tmp_path / ".hypothesis" / "examples").is_dir()
