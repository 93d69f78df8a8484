"""linear_response_eps and logit_linearity: exact on linear models, against the measured minimal perturbation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.errors import InvalidArgument
from robtest.properties import linear_response_eps, logit_linearity, logit_ray, minimal_perturbation


def _linear(seed: int = 0, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(9, classes)).eval()


def test_linear_response_is_where_the_top_logits_meet_on_a_linear_model():
    model = _linear()
    x = torch.rand(16, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    eps, j = linear_response_eps(model, x)
    y = model(x).argmax(1)
    x1 = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(x1), y, reduction="sum"), x1)
    u = g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    with torch.no_grad():
        h = model(x + eps.view(-1, 1, 1, 1) * u)
    rows = torch.arange(16)
    torch.testing.assert_close(h[rows, y], h[rows, j], atol=1e-4, rtol=0)  # the gap closed exactly there
    assert bool((h.max(1).values <= h[rows, y] + 1e-4).all())  # and no third class passed first


def test_linear_response_matches_the_bisected_minimal_l2_fgsm_on_a_linear_model():
    model = _linear(2)
    x = torch.rand(32, 1, 3, 3, generator=torch.Generator().manual_seed(3))
    y = model(x).argmax(1)
    eps, _ = linear_response_eps(model, x, y)
    # A box that never binds: the linear response follows the unclipped ray.
    m = minimal_perturbation(model, (x, y), norm="l2", bounds=(-50.0, 50.0), eps_max=20.0, bisections=20,
                             device="cpu")
    measured = torch.tensor(m.details["eps_min"], dtype=torch.float64)
    torch.testing.assert_close(eps.double(), measured, atol=1e-4, rtol=1e-4)


def test_a_class_that_never_gains_gives_infinity():
    lin = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0], [1.0]]))  # both logits move together: the gap never closes
    eps, _ = linear_response_eps(lin, torch.tensor([[0.5]]), torch.tensor([0]))
    assert eps.item() == float("inf")


def test_logit_linearity_of_linear_and_relu_models():
    x = torch.rand(8, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 4
    lin = logit_linearity(_linear(), x, y, eps_max=2.0)
    assert lin.value == pytest.approx(1.0, abs=1e-9) and lin.n == 8
    torch.manual_seed(0)
    relu = nn.Sequential(nn.Flatten(), nn.Linear(9, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    m = logit_linearity(relu, x, y, eps_max=2.0)
    assert m.value < 1 - 1e-6 and all(0 <= v <= 1 for v in m.details["wrong_hold"])
    assert len(m.details["correct_fraction"]) == 8


def test_wrong_hold_and_correct_fraction_on_a_one_dimensional_model():
    # Logits (x, 0): class 0 when x > 0. From x=0.1 with label 0 the FGSM ray lowers x: along ε in [−1, 1]
    # the point is x = 0.1 − ε, class 0 for ε < 0.1 and class 1 (wrong) for ε > 0.1: 9 of 21 grid points.
    lin = nn.Linear(1, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0], [0.0]]))
        lin.bias.zero_()
    eps, out = logit_ray(lin, torch.tensor([[0.1]]), torch.tensor([0]), eps_max=1.0, points=21)
    assert out.shape == (1, 21, 2) and eps[0] == -1.0
    m = logit_linearity(lin, torch.tensor([[0.1]]), torch.tensor([0]), eps_max=1.0, points=21)
    assert m.details["wrong_hold"] == [pytest.approx(9 / 21)]
    assert m.details["correct_fraction"] == [pytest.approx(12 / 21)]


def test_errors():
    model = _linear()
    with pytest.raises(InvalidArgument, match="x: expected a float tensor"):
        linear_response_eps(model, torch.zeros(3, dtype=torch.long))
    with pytest.raises(InvalidArgument, match=r"y: expected labels of shape \(2,\)"):
        logit_ray(model, torch.rand(2, 1, 3, 3), torch.zeros(3, dtype=torch.long), eps_max=0.1)
    with pytest.raises(InvalidArgument, match="eps_max > 0"):
        logit_ray(model, torch.rand(2, 1, 3, 3), torch.zeros(2, dtype=torch.long), eps_max=0.0)
