"""Training recipes: determinism, the global RNG left alone, the recipes' options checked."""

from __future__ import annotations

import pytest
import torch

from robtest.data import digits_tensors
from robtest.zoo import cached_model, first_and_last_layers, galloway_cnn, mlp, softmax_regression, train_classifier
from robtest.zoo.train import flush_denormal_enabled


@pytest.fixture(scope="module")
def small():
    x, y = digits_tensors("train")
    return x[:200], y[:200]


RECIPES = {
    "plain": {},
    "fgsm": {"adversarial": "fgsm", "eps": 0.1},
    "pgd-ramp": {"adversarial": "pgd", "eps": 0.1, "eps_ramp": 2, "pgd_steps": 2},
    "gda": {"noise_sigma": 0.3, "noise_copies": 2},
    "sign-noise": {"noise": "sign", "noise_eps": 0.1},
    "uniform-noise": {"noise": "uniform", "noise_eps": 0.1},
    "entropy": {"entropy_penalty": 1.0},
    "smooth": {"label_smoothing": 0.1},
    "sgd-l2": {"optimizer": "sgd", "weight_decay": 0.1, "lr": 0.01},
    "l2-first-layer": {"weight_decay": 0.05, "weight_decay_on": ("1",)},
}


@pytest.mark.parametrize("recipe", list(RECIPES), ids=list(RECIPES))
def test_same_seed_same_weights(small, recipe):
    x, y = small
    kw = {"epochs": 2, "reinit": True, **RECIPES[recipe]}
    a = train_classifier(mlp(hidden=(16,)), x, y, seed=3, **kw)
    b = train_classifier(mlp(hidden=(16,)), x, y, seed=3, **kw)
    c = train_classifier(mlp(hidden=(16,)), x, y, seed=4, **kw)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))
    assert not a.training and all(p.grad is None for p in a.parameters())


def test_global_rng_and_denormal_flag_left_alone(small):
    x, y = small
    before = flush_denormal_enabled()
    model = softmax_regression()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_classifier(model, x, y, epochs=1, seed=0, reinit=True, adversarial="pgd", eps=0.1, pgd_steps=1)
    assert torch.equal(torch.rand(3), expected)
    assert flush_denormal_enabled() == before


def test_training_learns(small):
    x, y = small
    m = train_classifier(softmax_regression(), x, y, epochs=20, lr=1e-2, seed=0, reinit=True)
    with torch.no_grad():
        assert float((m(x).argmax(1) == y).float().mean()) > 0.9


@pytest.mark.parametrize("kwargs, match", [
    ({"adversarial": "cw"}, "adversarial"),
    ({"adversarial": "fgsm"}, "eps"),
    ({"loss": "hinge"}, "loss"),
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"noise_copies": 3}, "noise_sigma"),
    ({"noise": "gauss", "noise_eps": 0.1}, "noise: expected one of"),
    ({"noise": "sign"}, "noise_eps"),
    ({"noise": "sign", "noise_eps": 0.1, "adversarial": "fgsm", "eps": 0.1}, "replaces the adversarial term"),
    ({"weight_decay": 0.1, "weight_decay_on": ("1", "conv9")}, r"weight_decay_on: expected names .*\['0', '1'\]"),
    ({"weight_decay": 0.1, "weight_decay_on": ()}, "weight_decay_on: expected names"),
], ids=["unknown-attack", "no-eps", "unknown-loss", "unknown-optimizer", "copies-without-sigma", "unknown-noise",
        "noise-without-eps", "noise-and-adversarial", "unknown-decayed-module", "no-decayed-module"])
def test_bad_recipes_are_refused(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_classifier(softmax_regression(), *small, epochs=1, **kwargs)


def test_cached_model_trains_once_and_loads_the_same_weights(small, tmp_path):
    x, y = small
    calls = []

    def fit(m):
        calls.append(1)
        return train_classifier(m, x, y, epochs=1, seed=0, reinit=True)

    a = cached_model("softmax-seed0", softmax_regression, fit, tmp_path)
    b = cached_model("softmax-seed0", softmax_regression, fit, tmp_path)
    assert len(calls) == 1 and not b.training
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("on, first, last", [
    (None, True, True),
    (("1",), True, False),
    ("3", False, True),
    (("1", "3"), True, True),
], ids=["all", "first", "last-as-a-string", "both"])
def test_weight_decay_on_decays_only_the_named_layers(on, first, last):
    """Zero inputs and a negative hidden bias leave both weights, and the hidden bias, without a data gradient
    (only the readout's bias learns), so plain SGD with L2 λ shrinks each decayed one by exactly (1 − ηλ) per
    step and leaves the others as they were."""
    x, y = torch.zeros(8, 1, 2, 2), torch.arange(8) % 2
    lr, wd, steps = 0.1, 0.5, 6  # 3 epochs of 2 batches of 4
    torch.manual_seed(0)
    model = mlp((1, 2, 2), 2, hidden=(3,))
    with torch.no_grad():
        model[1].bias.fill_(-1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_classifier(model, x, y, epochs=3, batch_size=4, lr=lr, optimizer="sgd", momentum=0.0,
                     weight_decay=wd, weight_decay_on=on, seed=0)
    after = model.state_dict()
    shrink = (1 - lr * wd) ** steps
    for name, decayed in [("1.weight", first), ("1.bias", first), ("3.weight", last)]:
        torch.testing.assert_close(after[name], before[name] * (shrink if decayed else 1.0), msg=name)
    assert not torch.equal(after["3.bias"], before["3.bias"])  # the data gradient still trains


def test_first_and_last_layers():
    assert first_and_last_layers(galloway_cnn(n_f=4)) == ("1", "8")
    assert first_and_last_layers(mlp(hidden=(16, 16))) == ("1", "5")
    with pytest.raises(ValueError, match="expected a module with parameters"):
        first_and_last_layers(torch.nn.Sequential(torch.nn.ReLU()))
