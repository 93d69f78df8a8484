"""FGSM against closed forms: on a linear model it is the exact worst case in the L∞ ball."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from robtest.attacks import fgsm, step_ll
from tests.helpers import linear_model


def _closed_form_grad(model, x, y):
    w, b = model[1].weight, model[1].bias
    p = F.softmax(x.flatten(1) @ w.T + b, dim=1)
    return ((p - F.one_hot(y, w.shape[0]).float()) @ w).view_as(x)


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 0.3))
def test_fgsm_linf_matches_closed_form(seed, eps):
    model = linear_model(seed=seed)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
    expected = (x + eps * _closed_form_grad(model, x, y).sign()).clamp(0, 1)
    torch.testing.assert_close(fgsm(model, x, y, eps=eps), expected)


@given(seed=st.integers(0, 10_000), eps=st.floats(0.01, 2.0))
def test_fgsm_l2_matches_closed_form(seed, eps):
    model = linear_model(seed=seed)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(8, 1, 4, 4, generator=g) * 0.5 + 0.25, torch.randint(0, 3, (8,), generator=g)
    grad = _closed_form_grad(model, x, y)
    step = grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(fgsm(model, x, y, eps=eps, norm="l2"), (x + eps * step).clamp(0, 1))


@given(seed=st.integers(0, 10_000), eps=st.floats(0.001, 0.2))
def test_fgsm_is_exact_worst_case_of_a_two_class_linear_model(seed, eps):
    # Inside the box interior, min over the L∞ ball of the margin z_y - z_o is margin - ε‖w_y - w_o‖₁,
    # reached at x - ε·sign(w_y - w_o): exactly FGSM's point.
    model = linear_model(classes=2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 1, 4, 4, generator=g) * 0.5 + 0.25
    y = torch.randint(0, 2, (16,), generator=g)
    w = model[1].weight
    d = (w[y] - w[1 - y])  # (N, 16)
    margin = lambda z: z.gather(1, y[:, None]).squeeze(1) - z.gather(1, (1 - y)[:, None]).squeeze(1)  # noqa: E731
    with torch.no_grad():
        worst = margin(model(x)) - eps * d.abs().sum(1)
        got = margin(model(fgsm(model, x, y, eps=eps)))
    torch.testing.assert_close(got, worst, rtol=1e-4, atol=1e-4)


def test_step_ll_descends_toward_least_likely_class():
    model = linear_model(seed=3)
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    y = torch.zeros(32, dtype=torch.long)
    with torch.no_grad():
        ll = model(x).argmin(1)
        before = F.log_softmax(model(x), 1).gather(1, ll[:, None])
        after = F.log_softmax(model(step_ll(model, x, y, eps=0.05)), 1).gather(1, ll[:, None])
    assert bool((after > before).all())


def test_targeted_fgsm_raises_target_probability():
    model = linear_model(seed=4)
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    target = torch.full((32,), 2)
    with torch.no_grad():
        before = F.softmax(model(x), 1)[:, 2]
        after = F.softmax(model(fgsm(model, x, target, eps=0.05, targeted=True)), 1)[:, 2]
    assert bool((after > before).all())
