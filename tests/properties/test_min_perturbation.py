"""min_perturbation: for a linear two-class model the minimal L∞ perturbation is |w·x + b| / ‖w‖₁."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.errors import InvalidArgument
from robtest.properties import minimal_perturbation
from robtest.session import RobustSession
from robtest.stats import bootstrap_ci


@pytest.fixture(scope="module")
def two_class():
    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(12, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, 12, generator=g))
        lin.bias.copy_(torch.randn(2, generator=g))
    model = nn.Sequential(nn.Flatten(), lin).eval()
    x = torch.rand(60, 1, 3, 4, generator=g)
    y = model(x).argmax(1).detach()  # labels the model gets right: every point counts
    return model, (x, y)


def closed_form(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    w = model[1].weight.detach()
    b = model[1].bias.detach()
    margin = x.flatten(1) @ (w[0] - w[1]) + (b[0] - b[1])
    return margin.abs() / (w[0] - w[1]).abs().sum()


def test_per_sample_minimal_eps_matches_the_closed_form(two_class):
    model, (x, _) = two_class
    y = model(x * 0.1).argmax(1).detach()
    # a wide box so that clipping never binds: the closed form is the exact answer
    m = minimal_perturbation(model, (x * 0.1, y), bounds=(-10.0, 10.0), bisections=24, device="cpu")
    exact = closed_form(model, x * 0.1)
    got = torch.tensor(m.details["eps_min"], dtype=exact.dtype)
    assert torch.allclose(got, exact, atol=1e-5)
    rho = (exact / (x * 0.1).flatten(1).abs().amax(1)).double().numpy()
    assert m.value == pytest.approx(float(rho.mean()), rel=1e-3)
    # The interval is the seeded bootstrap of the mean of the per-sample ρ.
    assert (m.low, m.high) == pytest.approx(bootstrap_ci(rho, seed=0), rel=1e-3)
    assert m.details["censored"] == 0


def test_floor_passes_below_and_fails_above(two_class):
    model, data = two_class
    with RobustSession(model, data, device="cpu") as s:
        m = s.min_perturbation(floor=0.0).measurement
        hi = s.min_perturbation(floor=m.value * 1.5, rule="plausible")
        lo = s.min_perturbation(floor=m.value * 0.5, rule="confident")
    assert lo.passed and not hi.passed
    assert "is below the floor" in hi.message()


def test_points_never_fooled_are_censored_at_eps_max(two_class):
    model, (x, y) = two_class
    m = minimal_perturbation(model, (x, y), eps_max=1e-3, device="cpu")
    assert m.details["censored"] > 0 and max(m.details["eps_min"]) == pytest.approx(1e-3)


def test_pgd_options_pass_through_and_unknown_ones_are_refused(two_class):
    model, data = two_class
    with RobustSession(model, data, device="cpu", samples=10) as s:
        v = s.min_perturbation(floor=0.0, attack="pgd", steps=3, bisections=4)
        assert v.passed and v.measurement.n == 10
        with pytest.raises(InvalidArgument, match="min_perturbation: expected keyword arguments among .* but got "
                                                  "colour"):
            s.min_perturbation(floor=0.0, colour="red")
