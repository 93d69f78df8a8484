"""The exact mode: it agrees with a grid search on a 2-D network, with the closed form on a linear model and with
the attack tests' independent MILP; and on MLPs and a CNN, L∞ and L2, every point obeys certified (IBP) ⇒
certified (CROWN) ⇒ certified (α-CROWN) ⇒ robust (MILP) ⇒ not broken (attack), and each counterexample is real."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from robtest.attacks import auto
from robtest.certify import certify
from robtest.data import digits_tensors
from tests.certify._nets import ball_samples, layer_zoo, margins
from tests.helpers import linear_model

ZOO = layer_zoo()


def in_ball(adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    d = (adv.double() - x.double()).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    tol = 1e-6 * (1 if norm == "linf" else math.sqrt(d.shape[1]))  # one float32 rounding per coordinate
    return (size <= eps + tol) & (adv.flatten(1).amin(1) >= 0) & (adv.flatten(1).amax(1) <= 1)


def check_counterexamples(model, cert, x, y, eps, norm) -> None:
    """Every falsified point comes with an input in the ball that the model misclassifies (re-predicted in
    float32; a margin within float32 rounding of 0 may go either way)."""
    f = cert.falsified
    if not bool(f.any()):
        return
    adv = cert.adversarial[f]
    assert bool(in_ball(adv, x[f], eps, norm).all())
    m = margins(model, adv, y[f]).amin(1)
    assert bool((m <= 1e-5).all())


# --- against independent answers ---------------------------------------------------------------------------

def _tiny_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


def _grid(x0: np.ndarray, eps: float, norm: str, step: float) -> np.ndarray:
    lo, hi = np.maximum(x0 - eps, 0), np.minimum(x0 + eps, 1)
    g = np.stack(np.meshgrid(np.arange(lo[0], hi[0] + step / 2, step), np.arange(lo[1], hi[1] + step / 2, step)),
                 -1).reshape(-1, 2)
    g = np.clip(g, lo, hi)
    if norm == "l2":
        g = g[np.linalg.norm(g - x0, axis=1) <= eps]
        t = np.linspace(0, 2 * np.pi, int(2 * np.pi * eps / step) + 8)
        circle = np.clip(x0 + eps * np.stack([np.cos(t), np.sin(t)], 1) * (1 - 1e-12), 0, 1)
        g = np.concatenate([g, circle, x0[None]])
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_milp_matches_a_grid_search_on_a_2d_net(norm, seed):
    model = _tiny_net(seed)
    exact = copy.deepcopy(model).double()
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = model(x).argmax(1)
    eps, step = 0.15, 0.002
    cert = certify(model, x, y, eps=eps, norm=norm, method="milp", time_limit=30)
    lip = math.sqrt(2) * math.prod(float(torch.linalg.matrix_norm(m.weight.detach().double(), 2))
                                   for m in model if isinstance(m, nn.Linear))
    for i in range(len(x)):
        pts = torch.from_numpy(_grid(x[i].double().numpy(), eps, norm, step))
        with torch.no_grad():
            z = exact(pts)
        m = (z[:, y[i]][:, None] - z)
        m[:, y[i]] = math.inf
        grid_min = float(m.min())
        if cert.certified[i]:
            assert grid_min > 0, (i, grid_min)
        if grid_min < 0:
            assert cert.falsified[i], (i, grid_min)
        if grid_min > lip * 2 * step:  # no point of the ball is farther than 2·step from the grid
            assert cert.certified[i], (i, grid_min)
    assert bool((cert.certified | cert.falsified).all())  # complete on a small net
    check_counterexamples(model, cert, x, y, eps, norm)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_milp_on_a_linear_model_is_the_closed_form(norm):
    model = linear_model(in_features=16, classes=4, seed=1)
    x = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    y = torch.arange(40) % 4
    eps = 0.05 if norm == "linf" else 0.2  # L2 0.2 stays inside [0, 1]: the closed form has no box
    w, b = model[1].weight.double(), model[1].bias.double()
    a = w[y][:, None, :] - w[None]
    lin = (a * x.double().flatten(1)[:, None]).sum(2) + (b[y][:, None] - b[None])
    worst = lin - eps * (a.abs().sum(2) if norm == "linf" else a.norm(dim=2))
    worst[torch.arange(40), y] = math.inf
    exact = worst.amin(1)
    cert = certify(model, x, y, eps=eps, norm=norm, method="milp")
    clear = exact.abs() > 1e-3
    assert bool(clear.sum() > 30) and bool(((exact > 0) & clear).any()) and bool(((exact < 0) & clear).any())
    assert torch.equal(cert.certified[clear], (exact > 0)[clear])
    assert torch.equal(cert.falsified[clear], (exact < 0)[clear])


def test_milp_matches_the_attack_tests_exact_milp(plain_mlp):
    from tests.attacks.exact import TIE, worst_margins

    x, y = digits_tensors("test")
    x, y = x[:20], y[:20]
    cert = certify(plain_mlp, x, y, eps=0.1, method="milp")
    ref = torch.tensor([worst_margins(plain_mlp, x[i], int(y[i]), 0.1) for i in range(len(y))])
    clear = ref.abs() > 10 * TIE
    assert torch.equal(cert.certified[clear], (ref < 0)[clear])
    assert torch.equal(cert.falsified[clear], (ref > 0)[clear])


# --- the chain, point by point -----------------------------------------------------------------------------------

EPS = {"linf": 0.1, "l2": 0.4}


def check_chain(model, x, y, norm, *, time_limit: float, unknown_at_most: int) -> None:
    eps = EPS[norm]
    ibp = certify(model, x, y, eps=eps, norm=norm, method="ibp")
    crown = certify(model, x, y, eps=eps, norm=norm, method="crown")
    alpha = certify(model, x, y, eps=eps, norm=norm, method="alpha-crown")
    exact = certify(model, x, y, eps=eps, norm=norm, method="milp", time_limit=time_limit)
    xa = auto(model, x, y, eps=eps, norm=norm, generator=torch.Generator().manual_seed(0))
    broken = margins(model, xa, y).amin(1) <= 0
    assert not bool((ibp.certified & ~crown.certified).any())
    assert not bool((crown.certified & ~alpha.certified).any())
    assert not bool((alpha.certified & ~exact.certified).any())
    assert not bool((exact.certified & broken).any())
    assert not bool((exact.certified & exact.falsified).any())
    check_counterexamples(model, exact, x, y, eps, norm)
    assert int((~exact.certified & ~exact.falsified).sum()) <= unknown_at_most
    assert 0 < int(exact.certified.sum()) and 0 < int(exact.falsified.sum())  # both sides are exercised


CHAIN_WARNINGS = pytest.mark.filterwarnings("ignore::robtest.errors.EvaluationWarning")  # the attack's own notes


@CHAIN_WARNINGS
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_certified_exact_attacked_chain_on_mlps(plain_mlp, norm):
    x, y = digits_tensors("test")
    check_chain(plain_mlp, x[:30], y[:30], norm, time_limit=20, unknown_at_most=0)


@CHAIN_WARNINGS
@pytest.mark.parametrize("norm, points", [("linf", 24), ("l2", 6)])
def test_certified_exact_attacked_chain_on_a_cnn(plain_cnn, norm, points):
    x, y = digits_tensors("test")
    check_chain(plain_cnn, x[:points], y[:points], norm, time_limit=2, unknown_at_most=2)


@pytest.mark.parametrize("name", list(ZOO), ids=list(ZOO))
def test_milp_on_every_layer_kind(name):
    model = ZOO[name]
    x = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        y = model(x).argmax(1)
    eps = 0.05
    crown = certify(model, x, y, eps=eps, method="crown")
    exact = certify(model, x, y, eps=eps, method="milp", time_limit=10)
    assert not bool((crown.certified & ~exact.certified).any())
    assert bool((exact.certified | exact.falsified).all())
    for xs in ball_samples(x, eps, "linf", 16, seed=7):
        hit = margins(model, xs.float(), y).amin(1) <= -1e-5
        assert not bool((exact.certified & hit).any())
    check_counterexamples(model, exact, x, y, eps, "linf")
