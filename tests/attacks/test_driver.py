"""Bad inputs each get a clear error (or, for evaluation pitfalls, an EvaluationWarning)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from robtest.attacks import fgsm, pgd
from robtest.attacks._driver import first_forward, predict, run_attack
from robtest.errors import AttackInvariantError, EvaluationWarning, InputError, InvalidArgument, ModelOutputError
from robtest.models import BPDA
from tests.helpers import linear_model

X = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 0])


class _NaN(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 3), float("nan"))


class _Flat(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :3].sum(1)


class _Tuple(nn.Module):
    def forward(self, x):
        return (x.flatten(1)[:, :3],)


@pytest.mark.parametrize("model,x,y,kwargs,exc,match", [
    (linear_model(), X[0, 0, 0], Y, {}, InputError, r"x: expected a float tensor of shape \(N, \.\.\.\)"),
    (linear_model(), X.long(), Y, {}, InputError, "x: expected a float tensor"),
    (linear_model(), X, Y.float(), {}, InputError, r"y: expected an integer tensor of class labels.*use y.long\(\)"),
    (linear_model(), X, Y[:3], {}, InputError, r"y: expected shape \(4,\), one label per sample"),
    (linear_model(), X, torch.tensor([0, 1, 5, 0]), {}, InputError, r"y: expected labels in 0..2 \(the model has 3"),
    (linear_model(), X, torch.tensor([0, -1, 1, 0]), {}, InputError, "y: expected labels >= 0 but got -1"),
    (linear_model(), X * 4 - 2, Y, {}, InputError, "looks like normalised data"),
    (linear_model(), X * 255, Y, {}, InputError, "looks like 0-255 pixels"),
    (linear_model(), X, Y, {"eps": -0.1}, InvalidArgument, "eps: expected a finite number >= 0 but got -0.1"),
    (linear_model(), X, Y, {"eps": float("nan")}, InvalidArgument, "eps: expected a finite number >= 0"),
    (linear_model(), X, Y, {"eps": "0.1"}, InvalidArgument, "eps: expected a non-negative number but got '0.1'"),
    (linear_model(), X, Y, {"eps": 8}, InvalidArgument, r"ε=8 is larger than the box.*did you mean 8/255 = 0.03137"),
    (linear_model(), X, Y, {"bounds": (1, 0)}, InvalidArgument, r"bounds: expected low < high"),
    (_NaN(), X, Y, {}, ModelOutputError, "expected finite logits but 4 of 4 rows hold NaN"),
    (_Flat(), X, Y, {}, ModelOutputError, r"expected logits of shape \(4, num_classes\)"),
    (_Tuple(), X, Y, {}, ModelOutputError, "expected a tensor of logits .* but got tuple"),
    (linear_model(), (X * 255).to(torch.uint8), Y, {}, InputError, r"torch.uint8; this looks like 0-255 pixels: "
     r"use x.float\(\) / 255"),
    (linear_model(), X, nn.functional.one_hot(Y, 3), {}, InputError, r"y: expected class indices of shape \(4,\) "
     r"but got one-hot labels of shape \(4, 3\); use y.argmax\(dim=1\) \(not y.long\(\)"),
    (linear_model(), X, nn.functional.one_hot(Y, 3).float(), {}, InputError, r"one-hot labels.*y.argmax\(dim=1\)"),
    (linear_model(), X, torch.tensor([[.7, .3], [.5, .5], [.1, .9], [1., 0.]]), {}, InputError,
     r"soft labels \(probabilities\) of shape \(4, 2\); use y.argmax\(dim=1\)"),
    (linear_model(), X, Y[:, None], {}, InputError, r"but got \(4, 1\); use y.view\(-1\)"),
    (linear_model(), X, Y.float() + 0.5, {}, InputError, "torch.float32; these are not whole numbers"),
    (linear_model(), X, Y.tolist(), {}, InputError, r"y: expected an integer tensor.*got list; use torch.as_tensor"),
], ids=["x-1d", "x-int", "y-float", "y-length", "label-too-big", "label-negative", "normalised", "0-255",
        "eps-negative", "eps-nan", "eps-string", "eps-255-units", "bounds", "nan-output", "output-1d", "output-tuple",
        "x-uint8", "y-one-hot", "y-one-hot-float", "y-soft", "y-column", "y-fractional", "y-list"])
def test_bad_input(model, x, y, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fgsm(model, x, y, **{"eps": 0.1, **kwargs})


def test_probability_outputs_warn():
    model = nn.Sequential(linear_model(), nn.Softmax(dim=1))
    with pytest.warns(EvaluationWarning, match="returns probabilities"):
        fgsm(model, X, Y, eps=0.1)


def test_log_probabilities_are_fine():
    import warnings

    model = nn.Sequential(linear_model(), nn.LogSoftmax(dim=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fgsm(model, X, Y, eps=0.1)


def test_large_linf_eps_warns():
    with pytest.warns(EvaluationWarning, match="half the box width"):
        pgd(linear_model(), X, Y, eps=0.6, steps=1)


def test_zero_gradient_warns_of_masking():
    class Quantise(nn.Module):
        def forward(self, x):
            return linear_model()((x * 4).round().detach() / 4)

    with pytest.warns(EvaluationWarning, match="no_gradient: .*does not depend differentiably on the input"):
        pgd(Quantise(), X, Y, eps=0.1, steps=2)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        flat[1].weight.zero_()
    with pytest.warns(EvaluationWarning, match="zero_gradients: exactly zero input gradient at 8 of 8 point-steps"):
        pgd(flat, X, Y, eps=0.1, steps=2, early_stop=False)


def test_exactly_zero_gradients_are_zero_not_tiny():
    # A quantising front gives exactly zero input gradients: that is zero_gradients alone, so that allowing it
    # (allow=("zero_gradients",)) clears the evaluation; tiny_gradients is for small but non-zero gradients.
    from robtest.diagnostics import collecting

    quantised = nn.Sequential(BPDA(lambda x: x, approx=lambda x: 0 * x), linear_model())
    with collecting() as found, pytest.warns(EvaluationWarning):
        pgd(quantised, X, Y, eps=0.1, steps=3, early_stop=False)
    assert {d.indicator: d.evidence for d in found.items()} == {"zero_gradients": {"point_steps": 12, "of": 12}}
    tiny = nn.Sequential(BPDA(lambda x: x, approx=lambda x: 1e-12 * x), linear_model())
    with collecting() as found, pytest.warns(EvaluationWarning):
        pgd(tiny, X, Y, eps=0.1, steps=3, early_stop=False)
    assert {d.indicator: d.evidence for d in found.items()} == {"tiny_gradients": {"point_steps": 12, "of": 12}}


def test_exception_classes_are_also_builtin_types():
    assert issubclass(InvalidArgument, ValueError) and issubclass(InputError, ValueError)


def _leaving_core(factor):
    """An algorithm that moves every point ``factor``·ε along a fixed unit direction of the norm (no projection)."""

    def core(f, x, y, *, eps, norm, lo, hi, loss):
        direction = torch.ones_like(x) if norm.name == "linf" else torch.ones_like(x) / x[0].numel() ** 0.5
        return x + factor * eps * direction

    return core


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.4)])
@pytest.mark.parametrize("factor", [1.01, 1.5, 1.99])
def test_driver_rejects_an_algorithm_that_leaves_the_ball(norm, eps, factor):
    # x sits in [0.25, 0.5] and 1.99·ε stays below 0.5 per coordinate, so the box clip cannot pull it back.
    x = 0.25 + 0.25 * X
    with pytest.raises(AttackInvariantError, match=rf"4 example\(s\) outside the L(∞|2) ε-ball .*sample 0, size "
                       rf"{factor * eps:.6g} > ε {eps:.6g}"):
        run_attack(_leaving_core(factor), linear_model(), x, Y, eps=eps, norm=norm)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.4)])
def test_driver_accepts_a_point_on_the_sphere(norm, eps):
    x = 0.25 + 0.25 * X
    x_adv = run_attack(_leaving_core(1.0), linear_model(), x, Y, eps=eps, norm=norm)
    size = (x_adv - x).flatten(1).abs().amax(1) if norm == "linf" else (x_adv - x).flatten(1).norm(dim=1)
    torch.testing.assert_close(size, torch.full((4,), eps))


class _Noisy(nn.Module):
    """Dropout then batch norm: in train mode two forward passes differ and batch statistics replace the running
    ones (which are set far from what this batch has, so eval and train outputs differ by a lot)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 3)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(3, 16, generator=torch.Generator().manual_seed(2)))
            self.lin.bias.zero_()
            self.bn.running_mean.fill_(5.0)
            self.bn.running_var.fill_(4.0)

    def forward(self, x):
        return self.bn(self.drop(self.lin(x.flatten(1))))


def test_predict_runs_in_eval_mode_and_restores_train_mode():
    torch.manual_seed(0)  # dropout draws from the global generator (only if predict forgot eval mode)
    model = _Noisy().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # The eval-mode output in closed form: dropout is the identity, BN uses the running statistics.
    with torch.no_grad():
        expected = (model.lin(X.flatten(1)) - 5.0) / (4.0 + model.bn.eps) ** 0.5 * model.bn.weight + model.bn.bias
    first, second = predict(model, X), predict(model, X)
    torch.testing.assert_close(first, expected)
    assert torch.equal(first, second)
    assert model.training and model.drop.training and model.bn.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics untouched


@pytest.mark.parametrize("eps", [np.float32(0.1), np.float64(0.1), np.int64(0), torch.tensor(0.1)],
                         ids=["np.float32", "np.float64", "np.int64", "0-d-tensor"])
def test_numpy_scalars_are_numbers(eps):
    expected = fgsm(linear_model(), X, Y, eps=float(eps))
    assert torch.allclose(fgsm(linear_model(), X, Y, eps=eps), expected)
    assert torch.allclose(pgd(linear_model(), X, Y, eps=eps, steps=2, random_start=False),
                          pgd(linear_model(), X, Y, eps=float(eps), steps=2, random_start=False))


def test_numpy_bool_is_not_a_number():
    with pytest.raises(InvalidArgument, match="eps: expected a non-negative number"):
        fgsm(linear_model(), X, Y, eps=np.bool_(True))


_CNN = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
_CNN3 = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))


@pytest.mark.parametrize("model,x,match", [
    (_CNN, torch.rand(4, 8, 8, 1), r"x: expected channels-first inputs with 1 channel\(s\) in dim 1 but got shape "
     r"\(4, 8, 8, 1\), which looks channels-last \(N, H, W, C\); use x.permute\(0, 3, 1, 2\)"),
    (_CNN3, torch.rand(4, 8, 8, 3), r"looks channels-last \(N, H, W, C\); use x.permute\(0, 3, 1, 2\)"),
    (nn.Sequential(nn.Conv1d(2, 2, 3), nn.Flatten(), nn.Linear(2 * 6, 3)), torch.rand(4, 8, 2),
     r"looks channels-last \(N, L, C\); use x.permute\(0, 2, 1\)"),
    (_CNN3, torch.rand(4, 1, 8, 8), r"the model expects 3 input channel\(s\) in dim 1 but got 1 in shape "
     r"\(4, 1, 8, 8\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).half(), torch.rand(4, 1, 8, 8),
     r"x: expected data of the model's dtype torch.float16 but got torch.float32; convert the data "
     r"\(x.to\(torch.float16\)\) or the model \(model.to\(torch.float32\)\)"),
    (copy.deepcopy(_CNN).bfloat16(), torch.rand(4, 1, 8, 8), "model's dtype torch.bfloat16 but got torch.float32"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), torch.rand(4, 1, 8, 8).double(),
     "model's dtype torch.float32 but got torch.float64"),
], ids=["nhwc-1", "nhwc-3", "nlc", "wrong-channels", "fp16-model", "bf16-conv", "fp64-data"])
def test_first_forward_translates_input_errors(model, x, match):
    with pytest.raises(InputError, match=match) as info:
        first_forward(model, x)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no torch traceback chained


def test_first_forward_leaves_other_errors_alone():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("something else went wrong")

    with pytest.raises(RuntimeError, match="something else"):
        first_forward(Broken(), X)
    assert torch.equal(first_forward(linear_model(), X), linear_model()(X))
