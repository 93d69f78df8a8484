"""robtest.session: one frozen settings object, every property through one path, and the attack-taking
properties accept every option of their attack from the registry."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robtest.data import digits_tensors
from robtest.errors import InvalidArgument
from robtest.session import RobustSession
from robtest.settings import Settings


def _model() -> torch.nn.Module:
    # nearest-class-mean softmax regression on the digits: about 90% clean accuracy, no training
    x, y = digits_tensors("train")
    mu = torch.stack([x[y == c].flatten(1).mean(0) for c in range(10)])
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        m[1].weight.copy_(20 * mu)
        m[1].bias.copy_(-10 * (mu ** 2).sum(1))
    return m.eval()


@pytest.fixture(scope="module")
def session():
    with RobustSession(_model(), digits_tensors("test"), device="cpu", samples=24, seed=1) as s:
        yield s


def test_the_session_is_built_from_one_frozen_settings_object(session):
    assert session.settings == Settings(device="cpu", samples=24, seed=1)
    assert (session.samples, session.seed, session.batch_size, session.rule) == (24, 1, 256, "point")
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.settings.seed = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        session.seed = 2  # type: ignore[misc]
    given = Settings(seed=5, rule="confident")
    with RobustSession(_model(), digits_tensors("test"), given, device="cpu") as s:
        assert s.settings == dataclasses.replace(given, device="cpu") and given.device == "auto"


def test_power_law_takes_every_option_of_its_attack(session):
    """pgd's random_start was refused by the hand-copied option list before the table."""
    v = session.power_law(exponent=(0.0, 5.0), attack="pgd", random_start=False, steps=2, eps=(0.02, 0.4),
                          points=4, min_errors=2, max_error=0.99, samples=80)
    assert v.measurement.details["attack"] == "pgd"
    assert v.measurement.n > 0 and "random_start" not in v.measurement.details
    with pytest.raises(InvalidArgument, match="power_law: expected keyword arguments among exponent, attack, .* but "
                                              "got queries; attack 'pgd' does not take 'queries'; it accepts: norm"):
        session.power_law(exponent=(0.0, 5.0), attack="pgd", queries=10)


def test_min_perturbation_takes_every_option_of_its_attack(session):
    """square's queries were refused by the hand-copied option list before the table."""
    v = session.min_perturbation(floor=0.0, attack="square", queries=100, bisections=3)
    assert v.passed and v.measurement.details["attack"] == "square" and v.measurement.n > 0
    with pytest.raises(InvalidArgument, match="attack 'square' does not take 'steps'; it accepts: norm, queries"):
        session.min_perturbation(floor=0.0, attack="square", steps=3)


CONFTEST = """
import pytest, torch
from robtest.data import digits_tensors

@pytest.fixture(scope="session")
def robust_model():
    x, y = digits_tensors("train")
    mu = torch.stack([x[y == c].flatten(1).mean(0) for c in range(10)])
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        m[1].weight.copy_(20 * mu)
        m[1].bias.copy_(-10 * (mu ** 2).sum(1))
    return m.eval()
"""

MARKERS = """
import pytest

@pytest.mark.power_law(exponent=(0.0, 5.0), attack="pgd", random_start=False, steps=2, eps=(0.02, 0.4), points=4,
                       min_errors=2, max_error=0.99, samples=80)
def test_power_law():
    pass

@pytest.mark.min_perturbation(floor=0.0, attack="square", queries=100, bisections=3, samples=24)
def test_min_perturbation():
    pass
"""


def test_the_markers_pass_attack_options_too(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_markers=MARKERS)
    pytester.runpytest("--robust", "-p", "no:cacheprovider").assert_outcomes(passed=2)
