"""min_perturbation: for a linear two-class model the minimal L∞ perturbation is |w·x + b| / ‖w‖₁ when the box
does not bind, and the exact box-constrained value (found by sorting the coordinates' room) when it does."""

from __future__ import annotations

import numpy as np
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


def box_minimal_linf(w: torch.Tensor, margin: float, x: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> float:
    """The exact minimal L∞ ε that brings ``margin + w·δ`` to 0 with ``x + δ`` in the box [lo, hi]^d.

    At radius ε the worst case moves every coordinate by ε against sign(w), as far as the box lets it: coordinate
    i has room r_i (to lo where w_i > 0, to hi where w_i < 0), so the margin falls by g(ε) = Σ |w_i| min(ε, r_i),
    piecewise linear in ε with kinks at the sorted r_i. The answer is the root of g(ε) = margin, or infinity when
    even g(max r) (the corner of the box) does not reach it.
    """
    a = w.double().abs()
    room = torch.where(w > 0, x.double() - lo, hi - x.double())
    order = torch.argsort(room)
    a, room = a[order], room[order]
    spent = 0.0  # Σ a_j r_j over the coordinates already at the edge
    for k in range(len(room)):
        slope = float(a[k:].sum())  # coordinates still moving
        start = float(room[k - 1]) if k else 0.0
        if spent + slope * (float(room[k]) - start) >= margin:
            return start + (margin - spent) / slope if slope > 0 else start
        spent += slope * (float(room[k]) - start)
    return float("inf")


def _edge_case_model(b: float) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A two-class linear model with margin w·x + b, and points whose three largest-|w| coordinates sit within
    0.02 of the edge the attack drives them to: there clipping binds."""
    torch.manual_seed(0)
    d = 8
    w = torch.randn(d)
    lin = nn.Linear(d, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([w, torch.zeros(d)]))
        lin.bias.copy_(torch.tensor([b, 0.0]))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, d, generator=g)
    big = w.abs().argsort(descending=True)[:3]
    near = 0.02 * torch.rand(40, 3, generator=g)
    x[:, big] = torch.where(w[big] > 0, near, 1 - near)
    x = x[x @ w + b > 0]  # class 0 right: the points minimal_perturbation measures
    return lin.eval(), w, x


@pytest.mark.parametrize("b", [4.0, 5.0], ids=["box-binds", "corner-holds"])
def test_box_constrained_minimal_eps_is_exact_and_not_the_unclipped_formula(b):
    model, w, x = _edge_case_model(b)
    bisections, eps_max = 24, 0.4
    m = minimal_perturbation(model, (x, torch.zeros(len(x), dtype=torch.long)), eps_max=eps_max,
                             bisections=bisections, device="cpu")
    got = torch.tensor(m.details["eps_min"], dtype=torch.float64)
    margin = (x @ w + b).double()
    exact = torch.tensor([box_minimal_linf(w, float(f), xi) for f, xi in zip(margin, x, strict=True)],
                         dtype=torch.float64)
    unclipped = margin / w.abs().double().sum()
    tol = eps_max / 2 ** bisections + 1e-5  # the bisection's resolution and float32 rounding of the margin
    reach = exact < eps_max - tol
    assert torch.allclose(got[reach], exact[reach], atol=tol)
    # Points the box protects beyond eps_max are censored there, robtest's lower bound of their minimum.
    assert bool((got[~reach] >= eps_max - tol).all()) and m.details["censored"] == int((~reach).sum())
    # |w·x + b| / ‖w‖₁ ignores the box: clipping makes the true minimum larger, or infinite.
    assert bool((exact >= unclipped - 1e-12).all()) and bool((unclipped < eps_max).all())
    if b == 4.0:
        assert int(reach.sum()) >= 25 and float((exact[reach] - unclipped[reach]).max()) > 0.2
    else:
        assert bool(torch.isinf(exact).all()) and m.details["censored"] == len(x) == 40


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


def test_l2_rho_is_the_size_of_the_example_found_not_the_eps_bracket():
    """L2 FGSM on a two-class linear model moves x along −w/‖w‖ and clips to the box: x(ε) = clip(x − ε·ŵ).
    Near the edges clipping binds, so the example found at the minimal ε* is closer to x than ε*: ρ is
    ‖x(ε*) − x‖₂/‖x‖₂, with ε* the root of w·x(ε) + b = 0 (scipy's brentq on the float64 path)."""
    from scipy.optimize import brentq

    model, w, x = _edge_case_model(4.0)
    eps_max = 2.0  # a few points stay robust up to there (the box protects them): censored, counted at eps_max
    m = minimal_perturbation(model, (x, torch.zeros(len(x), dtype=torch.long)), norm="l2", eps_max=eps_max,
                             bisections=30, device="cpu")
    wd, xd = w.double(), x.double()
    unit = wd / wd.norm()

    def moved(xi: torch.Tensor, e: float) -> torch.Tensor:
        return (xi - e * unit).clamp(0.0, 1.0)

    rho, bracket, censored = [], [], 0
    for xi in xd:
        def margin(e: float, xi: torch.Tensor = xi) -> float:
            return float(moved(xi, e) @ wd) + 4.0

        reached = margin(eps_max) < 0
        censored += not reached
        e = brentq(margin, 0.0, eps_max, xtol=1e-12) if reached else eps_max
        size = float((moved(xi, e) - xi).norm()) if reached else eps_max  # censored points count eps_max
        rho.append(size / float(xi.norm()))
        bracket.append(e / float(xi.norm()))
    assert m.details["censored"] == censored and 0 < censored < len(x) // 4
    assert m.value == pytest.approx(float(np.mean(rho)), rel=1e-4)
    assert float(np.mean(bracket)) > 1.05 * float(np.mean(rho))  # clipping binds: the ε bracket overstates ρ
