"""The indicators' false-alarm budget and their catch rate, measured (robtest/indicators.py, robtest/stats.py).

* A zoo of sound models (several seeds, plain and adversarially trained, BatchNorm in eval, GELU / tanh, label
  smoothing, a differentiable blur front, a softmax regression, BatchNorm and dropout left in train mode) under
  ``auto``, PGD-10/40 and FGSM, each gated by an accuracy floor set with margin below its robust accuracy: no
  verdict is suspect and every one passes (false alarms: 0 of ``len(SOUND) × len(ATTACKS)``).
* A catalogue of masked, stateful and broken models not in ``tests/test_indicators.py`` (custom autograd with
  random or reversed gradients, a detached backbone with a thin differentiable side branch, a DCT quantisation
  front, an fp16 deployment whose gradients underflow, transformations applied only without gradients or only off
  the data's pixel grid, stochastic activation pruning, a model that caches its queries), each gated by a floor
  between its true robust accuracy (an adaptive attack: BPDA through the transformation, or the plain network) and
  what the attack alone reports: none passes (false passes: 0), under ``-W ignore``-like filters.
"""

from __future__ import annotations

import copy
import functools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robtest.models import BPDA
from robtest.session import RobustSession
from robtest.verdict import Verdict

SAMPLES = 96
ATTACKS = (("auto", 0.1, {}), ("pgd", 0.1, {"steps": 10}), ("pgd", 0.05, {"steps": 40}), ("fgsm", 0.1, {}))


class Wrap(nn.Module):
    def __init__(self, net: nn.Module, fn) -> None:
        super().__init__()
        self.net, self.fn = net, fn

    def forward(self, x):
        return self.fn(self.net, x)


def _train(model, **kw):
    from robtest.data import digits_tensors
    from robtest.zoo import train_classifier

    x, y = digits_tensors("train")
    return train_classifier(model, x, y, **{"epochs": 12, "lr": 3e-3, "reinit": True, **kw})


def _blur(x):
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], device=x.device) / 16
    return F.conv2d(x, k.view(1, 1, 3, 3), padding=1)


def _sound(name: str) -> nn.Module:
    from robtest.zoo import mlp, small_cnn, softmax_regression

    seed = int(name[-1]) if name[-1].isdigit() else 0
    if name.startswith("mlp-seed"):
        return _train(mlp(hidden=(64,)), seed=seed)
    if name == "mlp-pgd-trained":
        return _train(mlp(hidden=(64,)), seed=1, adversarial="pgd", eps=0.1, pgd_steps=5)
    if name == "mlp-fgsm-trained":
        return _train(mlp(hidden=(64,)), seed=2, adversarial="fgsm", eps=0.1)
    if name == "cnn":
        return _train(small_cnn(width=8), epochs=4)
    if name == "cnn-batchnorm":
        net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                            nn.Linear(8 * 64, 10))
        return _train(net, epochs=4)
    if name == "mlp-gelu":
        return _train(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10)))
    if name == "mlp-tanh":
        return _train(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10)))
    if name == "mlp-label-smoothing":
        return _train(mlp(hidden=(64,)), label_smoothing=0.2)
    if name == "mlp-blur-front":
        return nn.Sequential(Wrap(nn.Identity(), lambda _, x: _blur(x)), _train(mlp(hidden=(64,)), seed=3))
    if name == "softmax-regression":
        return _train(softmax_regression(), epochs=10, lr=1e-2)
    if name == "log-softmax-head":
        return nn.Sequential(_train(mlp(hidden=(64,)), seed=4), nn.LogSoftmax(dim=1))
    if name == "declared-sigmoid-head":
        from robtest.models import AsLogits

        return AsLogits(Wrap(_train(mlp(hidden=(64,)), seed=5), lambda n, x: torch.sigmoid(n(x))), outputs="sigmoid")
    if name == "mlp-bn-dropout-left-training":
        net = _train(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(64, 10)))
        return net.train()  # left in train mode by its user: robtest evaluates it in eval mode
    raise KeyError(name)


SOUND = ("mlp-seed0", "mlp-seed1", "mlp-pgd-trained", "mlp-fgsm-trained", "cnn", "cnn-batchnorm", "mlp-gelu",
         "mlp-tanh", "mlp-label-smoothing", "mlp-blur-front", "softmax-regression", "log-softmax-head",
         "declared-sigmoid-head", "mlp-bn-dropout-left-training")


def _floor(session: RobustSession, **kw) -> Verdict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict must not depend on the warning channel
        return session.accuracy_floor(**kw)


@pytest.mark.parametrize("name", SOUND)
def test_sound_models_raise_no_false_alarm(name):
    from robtest.data import digits_tensors
    from robtest.evaluate import evaluate_accuracy

    model = _sound(name)
    data = digits_tensors("test")
    # The reference: the strong ensemble without its checks; every floor sits 0.15 below it.
    truth = evaluate_accuracy(model, data, attack="auto", eps=0.1, samples=SAMPLES, device="cpu", checks=False)
    with RobustSession(model, data, device="cpu", samples=SAMPLES) as s:
        for attack, eps, options in ATTACKS:
            ref = truth.value if eps == 0.1 else 1.0  # at ε=0.05 the ε=0.1 number is a lower bound
            floor = max(0.0, min(ref, 0.6) - 0.15)
            v = _floor(s, attack=attack, eps=eps, floor=floor, **options)
            assert not v.suspect, (name, attack, eps, v.message())
            assert v.passed, (name, attack, eps, v.message())
            assert not v.measurement.suspect
            if eps == 0.05:  # and at the small ε no indicator fires at all, counting ones included
                assert v.measurement.diagnostics == (), (name, attack, [str(d) for d in v.measurement.diagnostics])


# -- the masked catalogue -------------------------------------------------------------------------------------------

class _RandomGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return torch.randn_like(g)


class _ReversedGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return -g


def _dct(n: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.arange(n, dtype=like.dtype, device=like.device)
    d = torch.cos(torch.pi * (2 * k[None] + 1) * k[:, None] / (2 * n)) * (2 / n) ** 0.5
    d[0] /= 2 ** 0.5
    return d


def _dct_quantise(x):
    d = _dct(x.shape[-1], x)
    return (d.T @ (torch.round(d @ x @ d.T * 4) / 4) @ d).clamp(0, 1)


def _round(x):
    return torch.round(x * 4) / 4


def _only_without_grad(n, x):
    return n(x) if torch.is_grad_enabled() else n(_round(x))


def _off_grid(n, x):
    on_grid = ((x * 16 - torch.round(x * 16)).abs() < 1e-4).all()  # the digits' pixels are multiples of 1/16
    return n(x) if on_grid else n(_round(x))


class _Half(nn.Module):
    """Deployed in fp16 with its logits scaled down: gradients underflow."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).half()

    def forward(self, x):
        return self.net(x.half()).float() * 1e-3


class _SAP(nn.Module):
    """Stochastic activation pruning (Dhillon et al. 2018) on the MLP's hidden layer."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        first, last = [m for m in self.net.modules() if isinstance(m, nn.Linear)]
        h = F.relu(first(x.flatten(1)))
        p = h / (h.sum(1, keepdim=True) + 1e-12)
        keep = 1 - (1 - p) ** h.shape[1]
        return last(h * (torch.rand_like(h) < keep) / keep.clamp_min(1e-12))


class _Cache(nn.Module):
    """Remembers its queries and answers an input within 0.15 (L∞) of a stored one with the stored logits, its
    gradients left the network's (Chen et al. 2020's stateful detection, as a defence)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def forward(self, x):
        out = self.net(x)
        flat, fresh = x.detach().flatten(1), out.detach()
        cached = fresh
        if self.keys is not None:
            dist, j = torch.cdist(flat, self.keys, p=float("inf")).min(1)
            hit = dist <= 0.15
            cached = torch.where(hit[:, None], self.values[j], fresh)
            flat, fresh = flat[~hit], fresh[~hit]
        self.keys = flat if self.keys is None else torch.cat([self.keys, flat])
        self.values = fresh if self.values is None else torch.cat([self.values, fresh])
        return out + (cached - out).detach()


def _side(net):
    side = nn.Linear(64, 10)
    with torch.no_grad():
        side.weight.copy_(1e-3 * torch.randn(10, 64, generator=torch.Generator().manual_seed(0)))
        side.bias.zero_()
    return side


# name -> (the defended model from the trained net, the adaptive reference whose robust accuracy is the truth)
MASKED = {
    "random-gradient": (lambda n: Wrap(n, lambda m, x: m(_RandomGrad.apply(x))), lambda n: n),
    "reversed-gradient": (lambda n: Wrap(n, lambda m, x: m(_ReversedGrad.apply(x))), lambda n: n),
    "detached-backbone-side-branch": (
        lambda n: Wrap(n, functools.partial(lambda side, m, x: m(x).detach() + side(x.flatten(1)), _side(n))),
        lambda n: Wrap(n, functools.partial(lambda side, m, x: m(x) + side(x.flatten(1)), _side(n)))),
    "dct-quantisation-front": (lambda n: Wrap(n, lambda m, x: m(_dct_quantise(x))),
                               lambda n: nn.Sequential(BPDA(_dct_quantise), n)),
    "fp16-underflow": (_Half, lambda n: n),
    "squeezing-only-without-gradients": (lambda n: Wrap(n, _only_without_grad),
                                         lambda n: nn.Sequential(BPDA(_round), n)),
    "squeezing-only-off-the-pixel-grid": (lambda n: Wrap(n, _off_grid), lambda n: nn.Sequential(BPDA(_round), n)),
    "stochastic-activation-pruning": (_SAP, None),
    "query-cache": (_Cache, lambda n: n),
}


@pytest.fixture(scope="module")
def mlp_and_data():
    from robtest.data import digits_tensors
    from robtest.zoo import mlp

    return _train(mlp(hidden=(64,)), epochs=15, seed=0), digits_tensors("test")


@pytest.mark.parametrize("name", list(MASKED))
def test_masked_models_never_pass_a_floor_above_their_true_accuracy(mlp_and_data, name):
    from robtest.evaluate import evaluate_accuracy

    net, data = mlp_and_data
    build, reference = MASKED[name]
    truth = None
    if reference is not None:
        truth = evaluate_accuracy(reference(net), data, attack="auto", eps=0.1, samples=SAMPLES, device="cpu",
                                  checks=False).value
    tested = 0
    for attack, options in (("pgd", {"steps": 10}), ("auto", {})):
        with RobustSession(build(net), data, device="cpu", samples=SAMPLES) as s:  # a fresh cache per run
            reported = _floor(s, attack=attack, eps=0.1, floor=0.0, **options).measurement.value
        # A floor the attack alone would clear but the model does not: halfway between the truth and the report.
        low_truth = truth if truth is not None else 0.0
        if reported <= low_truth + 0.04:
            continue  # this attack is not fooled by this defence: nothing to overstate
        with RobustSession(build(net), data, device="cpu", samples=SAMPLES) as s:
            v = _floor(s, attack=attack, eps=0.1, floor=(low_truth + reported) / 2, **options)
        assert v.status in ("suspect", "FAIL") and not v.passed, (name, attack, truth, v.message())
        tested += 1
    assert tested, f"{name}: no attack overstated it; the case tests nothing"


def test_the_query_cache_is_flagged_stateful_whatever_the_attack(mlp_and_data):
    net, data = mlp_and_data
    for attack in ("pgd", "auto"):
        with RobustSession(_Cache(net), data, device="cpu", samples=SAMPLES) as s:
            v = _floor(s, attack=attack, eps=0.1, floor=0.3)
        assert "stateful" in [d.indicator for d in v.measurement.diagnostics], v.message()
        assert v.status == "suspect" and "stateful" in v.message()
