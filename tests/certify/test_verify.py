"""``certify``: no point is both certified and broken on thousands of points, CROWN certifies every point IBP
does (α-CROWN every point CROWN does), the arguments are checked, and the model comes back as it went in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import pgd
from robtest.certify import certify, outcomes
from robtest.errors import AttackInvariantError, InputError, InvalidArgument, ModelStateWarning
from robtest.models import Normalized
from tests.certify._nets import margins

CASES = [("linf", 0.05), ("linf", 0.1), ("l2", 0.3)]


def _sound_on_all_digits(model, digits_all, norm, eps) -> tuple[int, int, int]:
    x, y = digits_all
    ibp = certify(model, x, y, eps=eps, norm=norm, method="ibp", batch_size=512)
    crown = certify(model, x, y, eps=eps, norm=norm, method="crown", batch_size=512)
    # α-CROWN's 20 slope steps through the L2 dual cost seconds on 1797 points: 300 of them there
    k = len(y) if norm == "linf" else 300
    alpha = certify(model, x[:k], y[:k], eps=eps, norm=norm, method="alpha-crown", batch_size=512)
    xa = pgd(model, x, y, eps=eps, norm=norm, steps=20, loss="margin", generator=torch.Generator().manual_seed(0))
    broken = margins(model, xa, y).amin(1) <= 0
    assert not bool((crown.certified & broken).any())
    assert not bool((ibp.certified & broken).any())
    assert not bool((alpha.certified & broken[:k]).any())
    assert not bool((ibp.certified & ~crown.certified).any())  # CROWN certifies every point IBP does
    assert not bool((crown.certified[:k] & ~alpha.certified).any())  # and α-CROWN every point CROWN does
    outcomes(crown.certified, broken)  # would raise on a point both certified and broken
    return int(ibp.certified.sum()), int(crown.certified.sum()), int(broken.sum())


@pytest.mark.parametrize("norm, eps", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_no_point_is_both_certified_and_broken_plain(plain_mlp, digits_all, norm, eps):
    n_ibp, n_crown, n_broken = _sound_on_all_digits(plain_mlp, digits_all, norm, eps)
    assert n_crown > 100 and n_broken > 100  # both sides are exercised on 1797 points
    assert n_crown > n_ibp


@pytest.mark.parametrize("norm, eps", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_no_point_is_both_certified_and_broken_ibp_trained(ibp_mlp, digits_all, norm, eps):
    n_ibp, n_crown, n_broken = _sound_on_all_digits(ibp_mlp, digits_all, norm, eps)
    assert n_ibp > 500 and n_broken > 10


def test_misclassified_points_are_never_certified(plain_mlp, digits_all):
    x, y = digits_all
    wrong = margins(plain_mlp, x, y).amin(1) < 0
    cert = certify(plain_mlp, x[wrong], y[wrong], eps=0.0, method="crown")
    assert bool(wrong.any()) and not bool(cert.certified.any())
    assert bool((cert.lower.amin(1) < 0).all())


def test_per_sample_eps_and_batches_change_nothing(plain_mlp, digits_all):
    x, y = digits_all[0][:40], digits_all[1][:40]
    eps = torch.linspace(0.0, 0.2, 40)
    whole = certify(plain_mlp, x, y, eps=eps, batch_size=64)
    split = certify(plain_mlp, x, y, eps=eps, batch_size=7)
    assert torch.allclose(whole.lower, split.lower, rtol=1e-9, atol=1e-9)
    one = torch.cat([certify(plain_mlp, x[i:i + 1], y[i:i + 1], eps=float(eps[i])).lower for i in range(0, 40, 13)])
    assert torch.allclose(one, whole.lower[::13], rtol=1e-9, atol=1e-9)
    assert bool(whole.certified[0]) and not bool(whole.certified[-1])


def test_lower_bounds_shape_and_meaning(plain_mlp, digits_all):
    x, y = digits_all[0][:30], digits_all[1][:30]
    cert = certify(plain_mlp, x, y, eps=0.05)
    assert cert.lower.shape == (30, 10) and cert.lower.dtype == torch.float64
    assert bool(torch.isinf(cert.lower.gather(1, y[:, None])).all())
    assert torch.equal(cert.certified, (cert.lower > 0).all(1))
    assert not bool(cert.falsified.any()) and cert.adversarial is None and cert.seconds > 0
    assert bool((cert.lower <= margins(plain_mlp, x, y)).all())


def test_the_model_comes_back_as_it_went_in():
    model = Normalized(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(32, 3)), mean=[0.5], std=[0.2]).train()
    model.model[0].weight.requires_grad_(False)
    grads = [p.requires_grad for p in model.parameters()]
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    with pytest.warns(ModelStateWarning):
        train_mode = certify(model, x, y, eps=0.01, method="milp")
    with pytest.warns(ModelStateWarning):
        certify(model, x, y, eps=0.01, method="alpha-crown")  # gradients of its slopes only
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == grads
    assert all(p.grad is None for p in model.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    eval_mode = certify(model.eval(), x, y, eps=0.01, method="milp")
    assert torch.equal(train_mode.lower, eval_mode.lower)  # the running statistics, whatever the mode


def test_empty_batch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    cert = certify(model, torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.long), eps=0.1)
    assert cert.certified.shape == (0,)


BAD = [
    ("method", {"method": "lp"}, InvalidArgument, "method: expected one of ibp, crown, alpha-crown, milp"),
    ("time-limit", {"method": "milp", "time_limit": 0}, InvalidArgument, "time_limit: expected"),
    ("batch-size", {"batch_size": 0}, InvalidArgument, "batch_size: expected"),
    ("eps-negative", {"eps": -0.1}, InvalidArgument, "eps: expected"),
    ("eps-255", {"eps": 8}, InvalidArgument, "8/255"),
    ("norm", {"norm": "l1"}, InvalidArgument, "norm: expected"),
    ("bounds", {"bounds": (1, 0)}, InvalidArgument, "bounds: expected low < high"),
]


@pytest.mark.parametrize("kwargs, error, says", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments(kwargs, error, says):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0])
    with pytest.raises(error, match=None) as err:
        certify(model, x, y, **{"eps": 0.1, **kwargs})
    assert says in str(err.value)


def test_bad_data():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(InputError):
        certify(model, torch.rand(3, 1, 2, 2) * 255, torch.tensor([0, 1, 0]), eps=0.1)
    with pytest.raises(InvalidArgument, match="labels in 0..1"):
        certify(model, torch.rand(3, 1, 2, 2), torch.tensor([0, 5, 0]), eps=0.1)


def test_outcomes_refuse_a_point_both_certified_and_broken():
    with pytest.raises(AttackInvariantError, match="both certified and broken"):
        outcomes(torch.tensor([True, True]), torch.tensor([False, True]))
