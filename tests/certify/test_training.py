"""IBP training: a 2-second run on the digits certifies most test points at ε = 0.1, where plain training
certifies far fewer (benchmarks/bench_certify.py trains longer and certifies ~80%); the recipe is
deterministic and its options are checked."""

from __future__ import annotations

import pytest
import torch

from robtest.certify import IBPTrainer, certify
from robtest.data import digits_tensors
from robtest.errors import InvalidArgument
from robtest.zoo import mlp, train_classifier


def test_ibp_training_certifies(ibp_mlp, plain_mlp):
    x, y = digits_tensors("test")
    trained = certify(ibp_mlp, x, y, eps=0.1, method="ibp").certified.float().mean()
    plain = certify(plain_mlp, x, y, eps=0.1, method="crown").certified.float().mean()
    with torch.no_grad():
        clean = (ibp_mlp(x).argmax(1) == y).float().mean()
    assert float(trained) > 0.5 and float(plain) < float(trained) - 0.2 and float(clean) > 0.85
    assert not ibp_mlp.training and all(p.grad is None for p in ibp_mlp.parameters())


def test_same_seed_same_weights():
    x, y = digits_tensors("train")
    x, y = x[:128], y[:128]
    kw = dict(epochs=2, seed=5, reinit=True, adversarial="ibp", eps=0.1, eps_ramp=1)
    a = train_classifier(mlp(hidden=(8,)), x, y, **kw)
    b = train_classifier(mlp(hidden=(8,)), x, y, **kw)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_the_ramp():
    net = mlp(in_shape=(1, 2, 2), classes=3, hidden=(4,))
    ibp = IBPTrainer(net, torch.rand(2, 1, 2, 2), eps=0.2, kappa=0.5)
    assert ibp.schedule(0.0) == (0.0, 1.0)
    assert ibp.schedule(0.5) == pytest.approx((0.1, 0.75))
    assert ibp.schedule(3.0) == (0.2, 0.5)


@pytest.mark.parametrize("kwargs", [{"loss": "ovr"}, {"label_smoothing": 0.1}, {"noise_sigma": 0.1, "noise_copies": 1}],
                         ids=["ovr", "label-smoothing", "gaussian-copies"])
def test_ibp_refuses_other_losses(kwargs):
    x, y = digits_tensors("train")
    with pytest.raises(ValueError, match="'ibp' trains the cross-entropy"):
        train_classifier(mlp(hidden=(4,)), x[:8], y[:8], adversarial="ibp", eps=0.1, **kwargs)


@pytest.mark.parametrize("kwargs, says", [({"eps": 0.0}, "eps: expected a radius > 0"),
                                          ({"eps": 0.1, "kappa": 1.5}, "kappa: expected")], ids=["eps", "kappa"])
def test_trainer_arguments(kwargs, says):
    with pytest.raises(InvalidArgument, match=says):
        IBPTrainer(mlp(in_shape=(1, 2, 2), hidden=(4,)), torch.rand(2, 1, 2, 2), **kwargs)


def test_ibp_training_through_normalized_and_batchnorm():
    """BatchNorm keeps its running statistics (IBP training does not update them), so the trained model in
    eval mode is the function that was trained and bounded."""
    from torch import nn

    from robtest.models import Normalized

    x, y = digits_tensors("train")
    x, y = x[:256], y[:256]
    net = Normalized(nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.Flatten(), nn.Linear(64, 10)), mean=[0.3], std=[0.4])
    stats = net.model[1].running_var.clone()
    model = train_classifier(net, x, y, epochs=3, lr=1e-2, seed=0, reinit=True, adversarial="ibp", eps=0.05,
                             eps_ramp=2)
    assert torch.equal(model.model[1].running_var, stats) and not model.training
    with torch.no_grad():
        assert float((model(x).argmax(1) == y).float().mean()) > 0.5
    assert bool(certify(model, x[:50], y[:50], eps=0.02, method="ibp").certified.any())
