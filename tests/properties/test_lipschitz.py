"""lipschitz: a linear model's constant is the spectral norm of its weight, exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.errors import InvalidArgument
from robtest.properties import global_lipschitz_bound, lipschitz_estimate, local_lipschitz, loss_sensitivity
from robtest.session import RobustSession
from robtest.stats import bootstrap_ci


def linear(seed: int = 0) -> tuple[nn.Module, float]:
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
    with torch.no_grad():
        m[1].weight.copy_(torch.randn(5, 16, generator=g))
    return m.eval(), float(torch.linalg.matrix_norm(m[1].weight.detach().double(), 2))


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(40, 1, 4, 4, generator=g), torch.randint(0, 5, (40,), generator=g)


@pytest.mark.parametrize("estimate", ["local", "global"])
def test_linear_model_passes_just_above_and_fails_just_below_its_spectral_norm(data, estimate):
    model, sigma = linear()
    with RobustSession(model, data, device="cpu") as s:
        above = s.lipschitz(max=1.01 * sigma, estimate=estimate)
        below = s.lipschitz(max=0.99 * sigma, estimate=estimate)
    assert above.passed and not below.passed
    assert above.measurement.value == pytest.approx(sigma, rel=1e-3)
    assert "is above the ceiling" in below.message()


def test_local_estimate_never_exceeds_the_certified_bound_of_a_relu_net(data):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5)).eval()
    m = lipschitz_estimate(net, data, device="cpu")
    bound = global_lipschitz_bound(net, shape=(1, 4, 4), device="cpu").value
    assert 0 < m.details["max"] <= bound and m.details["global_bound"] == bound


def test_conv_bound_matches_the_operator_norm():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    # the dense matrix of the conv on 5x5 inputs, for an independent spectral norm
    eye = torch.eye(25).view(25, 1, 5, 5)
    dense = conv(eye).detach().flatten(1).T
    exact = float(torch.linalg.matrix_norm(dense.double(), 2))
    got = global_lipschitz_bound(nn.Sequential(conv), shape=(1, 5, 5), device="cpu").value
    assert got == pytest.approx(exact, rel=1e-3)


def test_loss_sensitivity_matches_the_closed_form(data):
    model, _ = linear()
    x, y = data
    m = loss_sensitivity(model, data, device="cpu")
    w = model[1].weight.detach()
    p = torch.softmax(model(x).detach(), 1)
    grad = (p - torch.nn.functional.one_hot(y, 5).float()) @ w  # ∂CE/∂x = Wᵀ(p − e_y)
    norms = grad.norm(dim=1).double().numpy()
    assert m.value == pytest.approx(float(norms.mean()), rel=1e-5)
    # The interval is the seeded bootstrap of the mean over these per-sample norms.
    assert (m.low, m.high) == pytest.approx(bootstrap_ci(norms, seed=0), rel=1e-5)


def test_unsupported_layers_are_named(data):
    class Square(nn.Module):
        def forward(self, x):
            return x ** 2

    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 5), Square())
    with pytest.raises(InvalidArgument, match="expected layers of the kinds .* but got Square at '2'"):
        global_lipschitz_bound(net, shape=(1, 4, 4), device="cpu")
    m = lipschitz_estimate(net, data, device="cpu", steps=3)
    assert "Square" in m.details["global_bound_note"]


def test_bad_arguments_and_model_left_as_it_was(data):
    model, _ = linear()
    model.train()
    with pytest.raises(InvalidArgument, match="radius: expected a number in \\(0, inf\\] but got 0"):
        local_lipschitz(model, data, radius=0, device="cpu")
    with pytest.raises(InvalidArgument, match="estimate: expected one of local, sensitivity, global but got 'l2'"):
        lipschitz_estimate(model, data, estimate="l2", device="cpu")
    local_lipschitz(model, data, steps=2, device="cpu")
    assert model.training and all(p.grad is None for p in model.parameters())
