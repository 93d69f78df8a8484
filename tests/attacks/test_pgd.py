"""PGD: never weaker than FGSM, restarts keep the worst case, deterministic, early stop changes no verdict."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import fgsm, pgd
from robtest.errors import InvalidArgument
from tests.helpers import linear_model


def _fooled(model, x, y):
    with torch.no_grad():
        return model(x).argmax(1) != y


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("linf", 0.1), ("l2", 0.5), ("l2", 1.0)])
def test_pgd_never_weaker_than_fgsm(trained_mlp, norm, eps):
    model, (x, y) = trained_mlp
    g = torch.Generator().manual_seed(0)
    n_fgsm = int(_fooled(model, fgsm(model, x, y, eps=eps, norm=norm), y).sum())
    n_pgd = int(_fooled(model, pgd(model, x, y, eps=eps, norm=norm, steps=20, generator=g), y).sum())
    assert n_pgd >= n_fgsm, (n_pgd, n_fgsm)


def test_pgd_reaches_fgsm_corner_on_a_linear_two_class_model():
    # FGSM is optimal for a linear two-class model; PGD without random start converges to the same point.
    model = linear_model(classes=2, seed=5)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 4, 4, generator=g) * 0.5 + 0.25
    y = torch.randint(0, 2, (32,), generator=g)
    a = pgd(model, x, y, eps=0.05, steps=10, random_start=False, early_stop=False)
    torch.testing.assert_close(a, fgsm(model, x, y, eps=0.05))


def test_restarts_keep_the_worst_case_per_sample(trained_mlp):
    model, (x, y) = trained_mlp
    one = pgd(model, x, y, eps=0.06, steps=5, generator=torch.Generator().manual_seed(3))
    three = pgd(model, x, y, eps=0.06, steps=5, restarts=3, generator=torch.Generator().manual_seed(3))
    # Restart 1 draws what the single run draws: every point it fools stays fooled with three restarts.
    assert bool((_fooled(model, one, y) <= _fooled(model, three, y)).all())


def test_restarts_equal_the_best_of_independent_runs(trained_mlp):
    # Without early stop every restart draws a full random start, exactly like consecutive single runs on the
    # same generator, so three restarts must keep, per point, a fooling run if any, else the highest loss.
    from robtest.attacks._driver import per_sample_loss

    model, (x, y) = trained_mlp
    g = torch.Generator().manual_seed(3)
    singles = [pgd(model, x, y, eps=0.04, steps=3, early_stop=False, generator=g) for _ in range(3)]
    three = pgd(model, x, y, eps=0.04, steps=3, restarts=3, early_stop=False,
                generator=torch.Generator().manual_seed(3))
    fooled = torch.stack([_fooled(model, s, y) for s in singles])
    assert torch.equal(_fooled(model, three, y), fooled.any(0))
    with torch.no_grad():
        losses = torch.stack([per_sample_loss(model(s), y, "ce") for s in singles])
        kept = per_sample_loss(model(three), y, "ce")
    never = ~fooled.any(0)
    torch.testing.assert_close(kept[never], losses.max(0).values[never])


def _random_start(norm, eps, n, shape):
    """PGD's starting offsets, read off a run whose one step is too small to move them (1e-7 of ε)."""
    model = linear_model(in_features=int(torch.tensor(shape).prod()))
    x = torch.full((n, *shape), 0.5)
    y = torch.zeros(n, dtype=torch.long)
    x_adv = pgd(model, x, y, eps=eps, norm=norm, steps=1, step_size=1e-7 * eps, early_stop=False,
                generator=torch.Generator().manual_seed(0))
    return (x_adv - x).flatten(1).double()


def test_linf_random_start_is_uniform_in_the_cube():
    from scipy import stats

    eps = 0.1
    delta = _random_start("linf", eps, 500, (1, 4, 4))  # 8000 coordinates, x = 0.5 keeps the box out of the way
    assert float(delta.abs().max()) <= eps + 1e-6
    # Each coordinate is U[−ε, ε]: mean 0 (sd of the mean ε/√(3·8000) ≈ 6.5e-4), both halves equally likely.
    u = delta.flatten().numpy()
    assert abs(u.mean()) < 4 * eps / (3 * u.size) ** 0.5
    assert stats.kstest(u, stats.uniform(loc=-eps, scale=2 * eps).cdf).pvalue > 1e-3
    assert abs((u < 0).mean() - 0.5) < 0.03


def test_l2_random_start_is_uniform_in_the_ball():
    from scipy import stats

    eps, d = 0.3, 4
    delta = _random_start("l2", eps, 2000, (1, 2, 2))
    r = delta.norm(dim=1).numpy()
    assert r.max() <= eps * (1 + 1e-5)
    # Uniform in the d-ball: P(‖δ‖ <= t·ε) = t^d, so (‖δ‖/ε)^d is U[0, 1]; the direction is symmetric.
    assert stats.kstest((r / eps) ** d, "uniform").pvalue > 1e-3
    assert float(delta.mean(0).abs().max()) < 4 * eps / (d * 2000) ** 0.5


def test_same_seed_same_examples(trained_mlp):
    model, (x, y) = trained_mlp
    a = pgd(model, x, y, eps=0.1, steps=5, generator=torch.Generator().manual_seed(7))
    b = pgd(model, x, y, eps=0.1, steps=5, generator=torch.Generator().manual_seed(7))
    c = pgd(model, x, y, eps=0.1, steps=5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_early_stop_changes_no_verdict(trained_mlp):
    model, (x, y) = trained_mlp
    kw = dict(eps=0.08, steps=10, random_start=False)
    early = _fooled(model, pgd(model, x, y, early_stop=True, **kw), y)
    full = _fooled(model, pgd(model, x, y, early_stop=False, **kw), y)
    # Early stop returns the first fooling iterate; the full run may fool a point at step t and lose it
    # later, so early stop can only find more failures, never fewer.
    assert bool((full <= early).all())
    assert int(early.sum()) - int(full.sum()) <= 0.02 * len(y)


class _Scaled(nn.Module):
    """The model's logits times ``k``: the same predictions, a softmax saturated to 0/1 in float32."""

    def __init__(self, model: nn.Module, k: float) -> None:
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.k


def test_margin_loss_is_at_least_as_strong_as_ce_on_confident_model(trained_mlp):
    # On an over-confident model the cross-entropy's gradient (softmax − one-hot) underflows to zero on the
    # points it is sure of and PGD-CE stalls there; the margin loss works on the logits and does not.
    model, (x, y) = trained_mlp
    confident = _Scaled(model, 1000.0)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ce = _fooled(confident, pgd(confident, x, y, eps=0.1, steps=20, generator=g()), y).sum()
    margin = _fooled(confident, pgd(confident, x, y, eps=0.1, steps=20, loss="margin", generator=g()), y).sum()
    plain = _fooled(model, pgd(model, x, y, eps=0.1, steps=20, loss="margin", generator=g()), y).sum()
    assert int(margin) >= int(ce) + 0.1 * len(y)
    assert int(margin) == int(plain)  # the margin loss's sign steps do not depend on the logits' scale


@pytest.mark.parametrize("kwargs,match", [
    (dict(steps=0), "steps: expected an integer >= 1 but got 0"),
    (dict(restarts=0), "restarts: expected an integer >= 1"),
    (dict(step_size=-1.0), "step_size: expected a number > 0"),
    (dict(norm="l1"), "norm: expected one of"),
    (dict(loss="hinge"), "loss: expected one of"),
], ids=["steps-0", "restarts-0", "negative-step", "unknown-norm", "unknown-loss"])
def test_bad_options(kwargs, match):
    model = linear_model()
    with pytest.raises(InvalidArgument, match=match):
        pgd(model, torch.full((2, 1, 4, 4), 0.5), torch.tensor([0, 1]), eps=0.1, **kwargs)


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.BatchNorm1d(8))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x))


def test_model_state_is_restored():
    torch.manual_seed(0)
    model = _Mixed()
    model.train()
    model.body[3].eval()  # mixed modes must come back exactly
    frozen = model.head.bias
    frozen.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    with pytest.warns(Warning, match="train mode"):
        pgd(model, x, y, eps=0.1, steps=3)
    assert model.training and model.body[2].training and not model.body[3].training
    assert all(p.grad is None for p in model.parameters())
    assert not frozen.requires_grad and model.head.weight.requires_grad
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm statistics untouched too
