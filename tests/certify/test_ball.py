"""The input set: the minimum of a linear function over the L∞ ball ∩ box is exact, over the L2 ball ∩ box a
sound bound that matches an independent solver (scipy's SLSQP) and the closed form when the box is inactive."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from robtest.certify.ball import Ball


def _problem(seed: int, d: int = 6, k: int = 4):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(1, d, generator=g, dtype=torch.float64)
    x0[0, : d // 2] = x0[0, : d // 2] * 0.1  # some coordinates near the box's edge, where it binds
    a = torch.randn(1, k, d, generator=g, dtype=torch.float64)
    return x0, a


def _slsqp_min(a: np.ndarray, x0: np.ndarray, eps: float) -> float:
    cons = [{"type": "ineq", "fun": lambda x: eps**2 - ((x - x0) ** 2).sum(), "jac": lambda x: -2 * (x - x0)}]
    res = minimize(lambda x: a @ x, x0, jac=lambda x: a, bounds=[(0, 1)] * len(x0), constraints=cons,
                   method="SLSQP", options={"ftol": 1e-10, "maxiter": 500})
    # "positive directional derivative" is SLSQP at the limit of its precision: accept a feasible answer
    assert res.success or res.status == 8
    assert ((res.x - x0) ** 2).sum() <= eps**2 + 1e-9 and res.x.min() >= -1e-12 and res.x.max() <= 1 + 1e-12
    return float(res.fun)


@pytest.mark.parametrize("seed", range(4))
def test_l2_dual_matches_an_independent_solver(seed):
    x0, a = _problem(seed)
    eps = 0.3
    got = Ball(x0, torch.tensor([eps], dtype=torch.float64), "l2", (0.0, 1.0)).min_linear(a)[0]
    for k in range(a.shape[1]):
        ref = _slsqp_min(a[0, k].numpy(), x0[0].numpy(), eps)
        assert got[k] <= ref + 1e-9  # a lower bound...
        assert got[k] >= ref - 1e-6  # ...and the best one


def test_l2_without_the_box_is_the_dual_norm():
    x0 = torch.full((1, 5), 0.5, dtype=torch.float64)
    a = torch.randn(1, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eps = 0.05  # the ball stays inside [0, 1]
    got = Ball(x0, torch.tensor([eps], dtype=torch.float64), "l2", (0.0, 1.0)).min_linear(a)
    want = (a * x0[:, None]).sum(2) - eps * a.norm(dim=2)
    assert torch.allclose(got, want, atol=1e-10)


def test_l2_with_a_box_corner_inside_the_ball_is_the_box():
    x0 = torch.tensor([[0.01, 0.99]], dtype=torch.float64)
    a = torch.tensor([[[1.0, -1.0]]], dtype=torch.float64)
    got = Ball(x0, torch.tensor([1.0], dtype=torch.float64), "l2", (0.0, 1.0)).min_linear(a)
    assert torch.allclose(got, torch.tensor([[-1.0]], dtype=torch.float64))  # the corner (0, 1)


def test_linf_is_exact_and_eps_zero_is_the_point():
    x0, a = _problem(0)
    ball = Ball(x0, torch.tensor([0.2], dtype=torch.float64), "linf", (0.0, 1.0))
    lo, hi = ball.box()
    corner = torch.where(a > 0, lo[:, None], hi[:, None])  # the minimising corner of the box
    assert torch.allclose(ball.min_linear(a), (a * corner).sum(2))
    for norm in ("linf", "l2"):
        at = Ball(x0, torch.tensor([0.0], dtype=torch.float64), norm, (0.0, 1.0)).min_linear(a)
        assert torch.allclose(at, (a * x0[:, None]).sum(2))
