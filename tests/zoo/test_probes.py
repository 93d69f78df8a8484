"""Probes: logit gaps, confidence (softmax and one-vs-rest), fooling-image ascent."""

from __future__ import annotations

import torch

from robtest.zoo import RBFNetwork, confidence, fooling_images, logit_gaps


def test_logit_gaps_top1_minus_topj():
    z = torch.tensor([[5.0, 1.0, 3.0, 4.5]])
    ident = torch.nn.Identity()
    assert logit_gaps(ident, z).tolist() == [0.5] and logit_gaps(ident, z, j=3).tolist() == [2.0]


def test_confidence_uses_rbf_probabilities():
    rbf = RBFNetwork((2,), 2)
    rbf.init_centres(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([0, 1]))
    far = torch.full((1, 2), 30.0)
    assert float(confidence(rbf, far)) < 1e-6  # a softmax over its logits would say ≈ 1


def test_fooling_images_raise_the_target_and_stay_in_the_box():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).train()
    start = torch.full((6, 1, 4, 4), 0.5)
    targets = torch.arange(6) % 3
    x = fooling_images(model, start, targets, steps=20, step_size=0.05)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    with torch.no_grad():
        before = torch.softmax(model(start), 1).gather(1, targets[:, None])
        after = torch.softmax(model(x), 1).gather(1, targets[:, None])
    assert bool((after > before).all())
    assert model.training  # mode restored
