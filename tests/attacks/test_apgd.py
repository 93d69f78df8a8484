"""APGD and APGD-T: sound and stronger than PGD against the exact answer, as strong as torchattacks, the
checkpoint schedule, reproducible, early stop, the DLR loss and its class count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import apgd, apgd_t, fgsm, pgd
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


def _two_class(margin: float, d: int = 16, seed: int = 0) -> nn.Module:
    """Two classes, linear: the cross-entropy's input gradient points along w₁ − w₀ at every input. Class 0 by
    ``margin`` at the grey image: wide enough that no point is fooled, small enough that the loss does not
    underflow in float32."""
    g = _gen(seed)
    lin = nn.Linear(d, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, d, generator=g))
        lin.bias.copy_(torch.tensor([margin - 0.5 * float(lin.weight[0].sum() - lin.weight[1].sum()), 0.0]))
    return nn.Sequential(nn.Flatten(), lin).eval()


def test_first_step_is_twice_eps_and_reaches_the_fgsm_corner():
    """APGD's step starts at η = 2ε (no halving at checkpoint 0): from any start in the L∞ ball a step of 2ε
    along sign(∇) ends, once projected, at x + ε·sign(∇), FGSM's point, the worst case for a linear model.
    With one step that is what APGD returns."""
    model = _two_class(8.0)
    x = 0.25 + 0.5 * torch.rand(12, 1, 4, 4, generator=_gen(1))
    y = torch.zeros(12, dtype=torch.long)
    for seed in range(3):
        got = apgd(model, x, y, eps=0.1, steps=1, generator=_gen(seed))
        torch.testing.assert_close(got, fgsm(model, x, y, eps=0.1), rtol=0, atol=1e-6)


class _Recorder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.inputs = model, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def test_momentum_weighs_the_new_step_by_three_quarters():
    """The iterates of an L2 run against the paper's update, recomputed in float64 from the recorded iterates:
    x₁ = P(x₀ + η·u), then x_{k+1} = P(x_k + 0.75·(z_{k+1} − x_k) + 0.25·(x_k − x_{k−1})) with z_{k+1} =
    P(x_k + η·u), η = 2ε (no checkpoint before step 3 of 10), u the unit gradient (constant for this model)
    and P the projection on the ε-ball around the clean point (the box is far). The gradient's float32
    direction is u to about 1e-5 (its softmax factor 1 − p₀ is small)."""
    model = _two_class(4.0)
    rec = _Recorder(model)
    x = 0.4 + 0.2 * torch.rand(3, 1, 4, 4, generator=_gen(1))
    y = torch.zeros(3, dtype=torch.long)
    eps = 0.3
    apgd(rec, x, y, eps=eps, norm="l2", steps=10, generator=_gen(0))
    w = model[1].weight.detach().double()
    u = (w[1] - w[0]) / (w[1] - w[0]).norm()
    c = x.flatten(1).double()

    def proj(v):
        d = v - c
        return c + d * torch.clamp(eps / d.norm(dim=1, keepdim=True), max=1.0)

    it = [t.flatten(1).double() for t in rec.inputs[:4]]
    eta = 2 * eps
    assert all(len(t) == 3 for t in rec.inputs[:4])  # nobody fooled, nobody dropped
    torch.testing.assert_close(it[1], proj(it[0] + eta * u), rtol=0, atol=1e-5)
    for k in (1, 2):
        z = proj(it[k] + eta * u)
        want = proj(it[k] + 0.75 * (z - it[k]) + 0.25 * (it[k] - it[k - 1]))
        torch.testing.assert_close(it[k + 1], want, rtol=0, atol=1e-5)
    assert float((it[2] - it[1]).norm(dim=1).min()) > 1e-3  # the iterates still move: the check has teeth
