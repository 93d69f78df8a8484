"""transfer: examples made on a surrogate, judged on the model (closed forms on linear models)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import fgsm, get_attack, pgd, transfer
from robtest.errors import InvalidArgument
from robtest.evaluate import evaluate_accuracy

W = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])


def _linear(weight: torch.Tensor) -> nn.Linear:
    m = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        m.weight.copy_(weight)
    return m.eval()


def _points(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = 0.25 + 0.5 * torch.rand(n, 3, generator=g)  # far enough inside the box that ε=0.1 never clips
    return x, torch.zeros(n, dtype=torch.long)


@pytest.mark.parametrize("attack, inner, options", [("fgsm", fgsm, {}), ("pgd", pgd, {"steps": 5})],
                         ids=["fgsm", "pgd"])
def test_the_model_as_its_own_surrogate_is_the_underlying_attack(attack, inner, options):
    model = _linear(W)
    x, y = _points()
    got = transfer(model, x, y, eps=0.1, surrogate=model, surrogate_attack=attack,
                   generator=torch.Generator().manual_seed(3), **options)
    want = inner(model, x, y, eps=0.1, generator=torch.Generator().manual_seed(3), **options)
    assert torch.equal(got, want)


def test_accuracy_under_transfer_from_itself_equals_white_box():
    model = _linear(W)
    x, y = _points()
    t = evaluate_accuracy(model, (x, y), attack="transfer", eps=0.3, device="cpu", surrogate=model,
                          steps=1, step_size=0.3, random_start=False)
    p = evaluate_accuracy(model, (x, y), attack="pgd", eps=0.3, device="cpu", steps=1, step_size=0.3,
                          random_start=False)
    f = evaluate_accuracy(model, (x, y), attack="transfer", eps=0.3, device="cpu", surrogate=model,
                          surrogate_attack="fgsm")
    assert (t.value, t.n) == (p.value, p.n)
    assert f.value == p.value < 1  # one full step from x with no random start is FGSM
    assert "transfer of PGD from a surrogate L∞ ε=0.3" in t.context


def test_a_surrogate_with_the_opposite_gradient_only_helps_the_model():
    # The surrogate's margin is −w·x: its FGSM step raises the model's margin w·x by exactly ε·‖w‖₁.
    model, anti = _linear(W), _linear(-W)
    x, y = _points()
    x_adv = transfer(model, x, y, eps=0.1, surrogate=anti, surrogate_attack="fgsm")
    with torch.no_grad():
        before, after = model(x)[:, 0], model(x_adv)[:, 0]
    torch.testing.assert_close(after - before, torch.full_like(before, 0.1 * 3.5))
    clean = evaluate_accuracy(model, (x, y), device="cpu")
    moved = evaluate_accuracy(model, (x, y), attack="transfer", eps=0.3, device="cpu", surrogate=anti,
                              surrogate_attack="fgsm")
    white = evaluate_accuracy(model, (x, y), attack="fgsm", eps=0.3, device="cpu")
    assert moved.value == clean.value > white.value


def test_a_surrogate_that_differs_transfers_partially():
    model, other = _linear(W), _linear(torch.tensor([[3.0, 0.0, 0.0], [-3.0, 0.0, 0.0]]))
    x, y = _points()
    x_adv = transfer(model, x, y, eps=0.1, surrogate=other, surrogate_attack="fgsm")
    # Only the first coordinate moves, by −ε: the model's margin drops by ε·|w₁| = 0.1, not ε·‖w‖₁ = 0.35.
    torch.testing.assert_close(x_adv[:, 1:], x[:, 1:])
    torch.testing.assert_close(x_adv[:, 0], x[:, 0] - 0.1)


def test_errors():
    model = _linear(W)
    x, y = _points(4)
    with pytest.raises(InvalidArgument, match="surrogate: the transfer attack needs the model"):
        transfer(model, x, y, eps=0.1)
    with pytest.raises(InvalidArgument, match="surrogate: expected a model but got the string 'plain'"):
        transfer(model, x, y, eps=0.1, surrogate="plain")
    with pytest.raises(InvalidArgument, match="expected one of .* but got 'pgdd'"):
        transfer(model, x, y, eps=0.1, surrogate=model, surrogate_attack="pgdd")
    with pytest.raises(InvalidArgument, match="attack 'fgsm' does not take 'steps'"):
        transfer(model, x, y, eps=0.1, surrogate=model, surrogate_attack="fgsm", steps=3)
    with pytest.raises(InvalidArgument, match="attack 'transfer' does not take 'restarts'; it accepts: surrogate"):
        get_attack("transfer").check_options({"surrogate_attack": "fgsm", "restarts": 2})
    get_attack("transfer").check_options({"surrogate": model, "steps": 3})  # pgd's steps pass through


def test_surrogate_mode_and_device_are_restored():
    model = _linear(W)
    surrogate = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)).train()
    x, y = _points()
    with pytest.warns(UserWarning, match="train mode"):
        evaluate_accuracy(model, (x, y), attack="transfer", surrogate=surrogate, eps=0.1, device="cpu", steps=2)
    assert all(m.training for m in surrogate.modules())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_surrogate_goes_to_the_evaluation_device_and_back():
    model, surrogate = _linear(W), _linear(-W)
    seen = []
    surrogate.register_forward_pre_hook(lambda m, inp: seen.append(m.weight.device.type))
    x, y = _points()
    evaluate_accuracy(model, (x, y), attack="transfer", surrogate=surrogate, eps=0.1, device="cuda", steps=2)
    assert set(seen) == {"cuda"} and surrogate.weight.device.type == "cpu"
