"""Probes: logit gaps, confidence (softmax and one-vs-rest), fooling-image ascent."""

from __future__ import annotations

import pytest
import torch

from robtest.zoo import RBFNetwork, confidence, fooling_images, logit_gaps, switched_off_filters


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


def _conv_with_norms(norms):
    conv = torch.nn.Conv2d(2, len(norms), 3)
    with torch.no_grad():
        w = torch.randn(conv.weight.shape, generator=torch.Generator().manual_seed(0))
        conv.weight.copy_(w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * torch.tensor(norms).view(-1, 1, 1, 1))
        conv.bias.fill_(5.0)  # the bias is not part of a filter
    return conv


def test_switched_off_filters_compares_kernel_norms_with_the_largest():
    conv = _conv_with_norms([2.0, 0.09, 0.19, 0.21, 1.5, 0.0])
    assert switched_off_filters(conv).tolist() == [False, True, True, False, False, True]
    assert switched_off_filters(conv, rel_norm=0.05).tolist() == [False, True, False, False, False, True]
    assert float(switched_off_filters(conv.weight, rel_norm=0.5).float().mean()) == pytest.approx(4 / 6)


def test_switched_off_filters_is_scale_free():
    """An even shrink of every filter (what one might expect L2 decay to do) switches nothing off."""
    conv = _conv_with_norms([1.0, 0.6, 0.3])
    assert not switched_off_filters(conv).any()
    assert not switched_off_filters(conv.weight * 1e-4).any()


def test_switched_off_filters_of_a_linear_layer_are_its_rows():
    w = torch.tensor([[3.0, 4.0], [0.0, 0.4], [0.0, 0.6]])
    assert switched_off_filters(torch.nn.Linear(2, 3).requires_grad_(False).weight.copy_(w)).tolist() == [
        False, True, False]


@pytest.mark.parametrize("layer, kwargs, match", [
    (torch.nn.Conv2d(1, 2, 3), {"rel_norm": 0.0}, "rel_norm: expected"),
    (torch.nn.Conv2d(1, 2, 3), {"rel_norm": 1.5}, "rel_norm: expected"),
    (torch.nn.ReLU(), {}, "layer: expected a layer with a weight"),
    (torch.zeros(4), {}, r"weight shape \(4,\)"),
], ids=["zero-fraction", "above-one", "no-weight", "vector"])
def test_switched_off_filters_refuses_bad_arguments(layer, kwargs, match):
    with pytest.raises(ValueError, match=match):
        switched_off_filters(layer, **kwargs)
