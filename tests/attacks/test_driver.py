"""Bad inputs each get a clear error (or, for evaluation pitfalls, an EvaluationWarning)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import fgsm, pgd
from robtest.errors import EvaluationWarning, InputError, InvalidArgument, ModelOutputError
from tests.helpers import linear_model

X = torch.rand(4, 1, 4, 4)
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
], ids=["x-1d", "x-int", "y-float", "y-length", "label-too-big", "label-negative", "normalised", "0-255",
        "eps-negative", "eps-nan", "eps-string", "eps-255-units", "bounds", "nan-output", "output-1d", "output-tuple"])
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


def test_exception_classes_are_also_builtin_types():
    assert issubclass(InvalidArgument, ValueError) and issubclass(InputError, ValueError)
