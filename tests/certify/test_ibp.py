"""IBP: every op's box holds its value anywhere in the ball, for every supported layer kind; on a linear model
the margin bound is the closed form; the bounds are differentiable (IBP training needs them)."""

from __future__ import annotations

import pytest
import torch

from robtest.certify.ball import Ball
from robtest.certify.graph import trace
from robtest.certify.ibp import ibp_bounds, margin_spec, margins_from_bounds
from tests.certify._nets import ball_samples, layer_zoo
from tests.helpers import linear_model

ZOO = layer_zoo()
EPS = {"linf": 0.1, "l2": 0.3}


def op_values(graph, x: torch.Tensor) -> list[torch.Tensor]:
    vals = [x]
    for op in graph.ops[1:]:
        vals.append(op.forward(*(vals[i] for i in op.inputs)))
    return vals


def check_boxes(graph, bounds, x: torch.Tensor, eps: float, norm: str) -> None:
    """Every op's value at sampled points of the ball lies in its box."""
    for xs in ball_samples(x, eps, norm, 16, seed=0).double():
        for i, (v, (lo, hi)) in enumerate(zip(op_values(graph, xs), bounds, strict=True)):
            assert bool((v >= lo - 1e-9).all() and (v <= hi + 1e-9).all()), f"op {i}: {graph.ops[i]!r}"


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", list(ZOO), ids=list(ZOO))
def test_ibp_boxes_hold_for_every_layer_kind(name, norm):
    model = ZOO[name]
    x = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    g = trace(model, x)
    ball = Ball(x.double(), torch.full((6,), EPS[norm], dtype=torch.float64), norm, (0.0, 1.0))
    with torch.no_grad():
        bounds = ibp_bounds(g, ball)
        check_boxes(g, bounds, x, EPS[norm], norm)
        y = torch.arange(6) % 3
        low = margins_from_bounds(g, bounds, margin_spec(y, 3, ball.x0), ball)
        for xs in ball_samples(x, EPS[norm], norm, 16, seed=1).double():
            z = g.forward(xs)
            assert bool((low <= (z.gather(1, y[:, None]) - z) + 1e-9).all())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_ibp_margin_of_a_linear_model_is_the_closed_form(norm):
    model = linear_model(in_features=16, classes=4, seed=3)
    x = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    y = torch.arange(20) % 4
    eps = 0.2 if norm == "linf" else 0.2  # L2 0.2 keeps the ball inside [0, 1]: the closed form has no box
    g = trace(model, x)
    ball = Ball(x.double(), torch.full((20,), eps, dtype=torch.float64), norm, (0.0, 1.0))
    with torch.no_grad():
        low = margins_from_bounds(g, ibp_bounds(g, ball), margin_spec(y, 4, ball.x0), ball)
        w, b = model[1].weight.double(), model[1].bias.double()
        a = w[y][:, None, :] - w[None]  # (N, C, d): the margin's weights
        lin = (a * x.double().flatten(1)[:, None]).sum(2) + (b[y][:, None] - b[None])
        if norm == "linf":
            xf = x.double().flatten(1)[:, None]
            lo, hi = (xf - eps).clamp(min=0), (xf + eps).clamp(max=1)
            want = (a.clamp(min=0) * lo + a.clamp(max=0) * hi).sum(2) + (b[y][:, None] - b[None])
        else:
            want = lin - eps * a.norm(dim=2)
    assert torch.allclose(low, want, atol=1e-9)


def test_ibp_bounds_are_differentiable_in_the_parameters():
    model = ZOO["batchnorm2d-eval"]
    x = torch.rand(4, 3, 4, 4)
    g = trace(model, x)
    ball = Ball(x, torch.full((4,), 0.1), "linf", (0.0, 1.0))
    low = margins_from_bounds(g, ibp_bounds(g, ball), margin_spec(torch.zeros(4, dtype=torch.long), 3, x), ball)
    low.sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
    model.zero_grad(set_to_none=True)
