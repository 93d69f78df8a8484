"""CROWN: its boxes hold and lie inside IBP's, its margin bounds (and α-CROWN's) hold and are never below IBP's
(CROWN's), for every supported layer kind and both norms; it is exact through affine ops and tighter than IBP
on a trained MLP."""

from __future__ import annotations

import pytest
import torch

from robtest.certify.backsub import bound_neurons
from robtest.certify.ball import Ball
from robtest.certify.crown import alpha_margins, crown_bounds, crown_margins
from robtest.certify.graph import trace
from robtest.certify.ibp import ibp_bounds, margin_spec, margins_from_bounds
from tests.certify._nets import ball_samples, layer_zoo
from tests.certify.test_ibp import EPS, check_boxes

ZOO = layer_zoo()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", list(ZOO), ids=list(ZOO))
def test_crown_holds_and_is_inside_ibp_for_every_layer_kind(name, norm):
    model = ZOO[name]
    x = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    y = torch.arange(6) % 3
    g = trace(model, x)
    ball = Ball(x.double(), torch.full((6,), EPS[norm], dtype=torch.float64), norm, (0.0, 1.0))
    with torch.no_grad():
        ibp = ibp_bounds(g, ball)
        crown = crown_bounds(g, ball)
        check_boxes(g, crown, x, EPS[norm], norm)
        for (li, hi), (lc, hc) in zip(ibp, crown, strict=True):
            assert bool((lc >= li).all() and (hc <= hi).all())
        spec = margin_spec(y, 3, ball.x0)
        low = crown_margins(g, ball, spec, crown)
        assert bool((low >= margins_from_bounds(g, ibp, spec, ball)).all())
        alpha = alpha_margins(g, ball, spec, crown, steps=5)
        assert bool((alpha >= low).all())
        for xs in ball_samples(x, EPS[norm], norm, 16, seed=4).double():
            z = g.forward(xs)
            assert bool((alpha <= (z.gather(1, y[:, None]) - z) + 1e-9).all())


def test_back_substitution_is_exact_through_affine_ops():
    """Before any ReLU the network is affine: the neurons' bounds are the affine map's range over the box,
    computed here from its Jacobian (the map applied to the basis vectors)."""
    model = ZOO["normalized-unequal-std"]
    x = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    g = trace(model, x)
    first = next(i for i, op in enumerate(g.ops) if type(op).__name__ == "Linear")

    def affine(v: torch.Tensor) -> torch.Tensor:  # the ops up to the first Linear
        vals = [v]
        for op in g.ops[1:first + 1]:
            vals.append(op.forward(*(vals[i] for i in op.inputs)))
        return vals[-1]

    ball = Ball(x.double(), torch.full((3,), 0.05, dtype=torch.float64), "linf", (0.0, 1.0))
    with torch.no_grad():
        lo, hi = bound_neurons(g, first, torch.arange(g.ops[first].numel), ibp_bounds(g, ball), ball)
        basis = torch.eye(48, dtype=torch.float64).view(48, 3, 4, 4)
        jac = (affine(basis) - affine(torch.zeros(1, 3, 4, 4, dtype=torch.float64))).T  # (neurons, pixels)
        mid = affine((ball.lower + ball.upper) / 2)
        rad = ((ball.upper - ball.lower) / 2).flatten(1) @ jac.abs().T
    assert torch.allclose(lo, mid - rad, atol=1e-10) and torch.allclose(hi, mid + rad, atol=1e-10)


def model_has_no_grad(model) -> bool:
    return all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.3)])
def test_crown_is_tighter_than_ibp_on_a_trained_mlp(plain_mlp, digits_all, norm, eps):
    x, y = digits_all[0][:300], digits_all[1][:300]
    g = trace(plain_mlp, x)
    ball = Ball(x.double(), torch.full((300,), eps, dtype=torch.float64), norm, (0.0, 1.0))
    with torch.no_grad():
        spec = margin_spec(y, 10, ball.x0)
        ibp = margins_from_bounds(g, ibp_bounds(g, ball), spec, ball)
        crown = crown_margins(g, ball, spec, crown_bounds(g, ball))
        alpha = alpha_margins(g, ball, spec, crown_bounds(g, ball))
    wrong = torch.ones_like(ibp, dtype=torch.bool).scatter_(1, y[:, None], False)
    assert bool((crown[wrong] >= ibp[wrong]).all()) and bool((alpha[wrong] >= crown[wrong]).all())
    assert float((crown - ibp)[wrong].mean()) > 0.1  # back-substitution gains a lot on a plainly trained net
    assert float((alpha - crown)[wrong].mean()) > 0  # and optimised slopes a little more
    assert model_has_no_grad(plain_mlp)
