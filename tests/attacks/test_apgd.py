"""APGD and APGD-T: sound and stronger than PGD against the exact answer, as strong as torchattacks, the
checkpoint schedule, reproducible, early stop, the DLR loss and its class count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import apgd, apgd_t, pgd
from robtest.attacks._driver import per_sample_loss
from robtest.attacks.apgd import checkpoints
from robtest.errors import InvalidArgument


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_checkpoints_follow_the_paper():
    # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1) == [0]
    assert all(b > a for a, b in zip(checkpoints(7), checkpoints(7)[1:], strict=False))


@pytest.mark.parametrize("attack,kw", [(apgd, {"loss": "ce"}), (apgd, {"loss": "dlr"}), (apgd_t, {})],
                         ids=["apgd-ce", "apgd-dlr", "apgd-t"])
def test_sound_against_the_exact_answer(exact_mlp, attack, kw):
    e = exact_mlp
    fooled = e.fooled(attack(e.model, e.x, e.y, eps=e.eps, steps=50, generator=_gen(), **kw))
    # never fools a point the MILP proves robust: the examples lie in the ball, the verdict is sound
    assert not (fooled & e.robust).any()


def test_apgd_t_comes_within_one_point_of_the_exact_answer(exact_mlp):
    e = exact_mlp
    exact = float(e.robust.mean())
    acc_t = e.accuracy(apgd_t(e.model, e.x, e.y, eps=e.eps, steps=50, generator=_gen()))
    acc_pgd = e.accuracy(pgd(e.model, e.x, e.y, eps=e.eps, generator=_gen()))
    print(f"exact {exact:.2f}, APGD-T {acc_t:.2f}, PGD-10 {acc_pgd:.2f}")
    assert exact <= acc_t <= exact + 1 / len(e.y) + 1e-9, (exact, acc_t)


torchattacks = pytest.importorskip("torchattacks")


def _slack(n: int) -> float:
    # Different random starts on each side: a point or two on the boundary may go either way.
    return 2 / n + 1e-9


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.6)])
def test_apgd_as_strong_as_torchattacks(exact_mlp, norm, eps):
    e = exact_mlp
    torch.manual_seed(0)
    theirs = torchattacks.APGD(e.model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, steps=50, loss="ce",
                               seed=0)(e.x, e.y)
    ours = apgd(e.model, e.x, e.y, eps=eps, norm=norm, steps=50, generator=_gen())
    assert e.accuracy(ours) <= e.accuracy(theirs) + _slack(len(e.y)), (e.accuracy(ours), e.accuracy(theirs))


def test_apgd_t_as_strong_as_torchattacks(exact_mlp):
    e = exact_mlp
    # torchattacks attacks n_classes − 1 targets: n_classes=4 gives the same 3 most likely wrong classes
    theirs = torchattacks.APGDT(e.model, eps=e.eps, steps=50, n_classes=4, seed=0)(e.x, e.y)
    ours = apgd_t(e.model, e.x, e.y, eps=e.eps, steps=50, targets=3, generator=_gen())
    assert e.accuracy(ours) <= e.accuracy(theirs) + _slack(len(e.y)), (e.accuracy(ours), e.accuracy(theirs))


@pytest.mark.parametrize("attack", [apgd, apgd_t])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_same_seed_same_examples(trained_mlp, attack, norm):
    model, (x, y) = trained_mlp
    x, y = x[:64], y[:64]
    eps = 0.05 if norm == "linf" else 0.3
    a, b, c = (attack(model, x, y, eps=eps, norm=norm, steps=10, generator=_gen(s)) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_no_generator_draws_nothing_from_the_global_rng(trained_mlp):
    model, (x, y) = trained_mlp
    state = torch.get_rng_state()
    a = apgd(model, x[:16], y[:16], eps=0.05, steps=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, apgd(model, x[:16], y[:16], eps=0.05, steps=5))


class _Rows(nn.Module):
    """Counts the rows the attack forwards."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += x.shape[0]
        return self.model(x)


def test_a_fooled_point_keeps_its_fooling_example_and_costs_no_more_steps(trained_mlp):
    model, (x, y) = trained_mlp
    x = x[:40]
    with torch.no_grad():
        pred = model(x).argmax(1)
    # Half the labels name a class the model does not predict: those points are fooled from the first step.
    y = torch.where(torch.arange(40) % 2 == 0, (pred + 1) % 10, pred)
    counted = _Rows(model)
    steps = 20
    x_adv = apgd(counted, x, y, eps=0.01, steps=steps, generator=_gen())
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y
    assert bool(fooled[::2].all())
    # 20 points fooled at step 0 cost one forward each; the other 20 at most steps + 1.
    assert counted.rows <= 1 + 20 + 20 * (steps + 1)
    assert counted.rows < 40 * (steps + 1)


def test_unfooled_points_return_their_highest_loss_iterate(trained_mlp):
    model, (x, y) = trained_mlp
    x, y = x[:64], y[:64]
    x_adv = apgd(model, x, y, eps=0.02, steps=10, generator=_gen())
    with torch.no_grad():
        robust = model(x_adv).argmax(1) == y
        gain = per_sample_loss(model(x_adv), y, "ce") - per_sample_loss(model(x), y, "ce")
    assert bool(robust.any())
    assert bool((gain[robust] > 0).all())  # never the clean point, never worse than where it started


def test_dlr_needs_three_classes_and_targeted_dlr_four():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 2, 2)
    two = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(InvalidArgument, match="at least 3 classes for the DLR loss .* 2 outputs; use loss='margin'"):
        apgd(two, x, torch.tensor([0, 1, 0, 1]), eps=0.1, loss="dlr", steps=2)
    three = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    apgd(three, x, torch.tensor([0, 1, 2, 0]), eps=0.1, loss="dlr", steps=2)
    with pytest.raises(InvalidArgument, match="at least 4 classes for the targeted DLR loss"):
        apgd_t(three, x, torch.tensor([0, 1, 2, 0]), eps=0.1, steps=2)


def test_dlr_does_not_change_when_the_logits_are_scaled():
    z = torch.randn(8, 5, generator=_gen())
    y = torch.arange(8) % 5
    torch.testing.assert_close(per_sample_loss(z, y, "dlr"), per_sample_loss(50 * z, y, "dlr"))
    t = (y + 1) % 5
    torch.testing.assert_close(per_sample_loss(z, y, "dlr", target=t), per_sample_loss(50 * z, y, "dlr", target=t))


@pytest.mark.parametrize("kw,match", [
    ({"steps": 0}, "steps: expected an integer >= 1"),
    ({"restarts": 0}, "restarts: expected an integer >= 1"),
    ({"rho": 1.5}, r"rho: expected a number in \(0, 1\]"),
    ({"loss": "hinge"}, "loss: expected one of"),
], ids=["steps", "restarts", "rho", "loss"])
def test_bad_arguments(trained_mlp, kw, match):
    model, (x, y) = trained_mlp
    with pytest.raises(InvalidArgument, match=match):
        apgd(model, x[:2], y[:2], eps=0.1, **kw)
