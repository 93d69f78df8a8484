"""The reference models: quantisers, the straight-through estimator, bounded ReLU, the RBF network, the CNN."""

from __future__ import annotations

import pytest
import torch

from robtest.zoo import (
    BoundedReLU,
    QuantAct,
    QuantLinear,
    RBFNetwork,
    galloway_cnn,
    quantize,
    quantized_softmax_regression,
    spheres_mlp,
)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_k_bit_weights_take_at_most_2_to_the_k_values(bits):
    w = torch.randn(1000, generator=torch.Generator().manual_seed(bits))
    q = quantize(w, bits)
    assert q.unique().numel() <= 2 ** bits
    assert float(q.abs().max()) <= float(w.abs().max()) + 1e-6


def test_one_bit_is_scaled_sign():
    w = torch.tensor([-3.0, -1.0, 2.0, 0.5])
    assert torch.equal(quantize(w, 1), torch.tensor([-1.625, -1.625, 1.625, 1.625]))


def test_high_bit_quantisation_is_close():
    w = torch.randn(500, generator=torch.Generator().manual_seed(0))
    assert float((quantize(w, 16) - w).abs().max()) < 1e-3 * float(w.abs().max())


@pytest.mark.parametrize("bits", [0, -1, 2.5, True])
def test_bad_bits_are_refused(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize(torch.ones(3), bits)


def test_straight_through_gradient_passes():
    w = torch.randn(20, generator=torch.Generator().manual_seed(0)).requires_grad_()
    (quantize(w, 1) * torch.arange(20.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(20.0))  # identity backward, not sign's zero gradient


def test_quant_linear_trains_and_forwards_quantised():
    torch.manual_seed(0)
    layer = QuantLinear(6, 3, bits=2)
    x = torch.randn(4, 6)
    expected = torch.nn.functional.linear(x, quantize(layer.weight, 2).detach(), layer.bias)
    assert torch.allclose(layer(x), expected)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and bool(layer.weight.grad.abs().sum() > 0)


def test_quantized_softmax_regression_forwards():
    torch.manual_seed(0)
    assert quantized_softmax_regression((1, 8, 8), 2, bits=1)(torch.rand(5, 1, 8, 8)).shape == (5, 2)


def test_quant_act_levels_and_gradient():
    act = QuantAct(2)
    x = torch.linspace(-1, 2, 301, requires_grad=True)
    out = act(x)
    assert torch.allclose(out.detach().unique(), torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))
    out.sum().backward()
    inside = (x.detach() > 0) & (x.detach() < 1)
    assert bool((x.grad[inside] == 1).all()) and bool((x.grad[~inside] == 0).all())


def test_bounded_relu_is_bounded():
    x = torch.linspace(-100, 100, 1001)
    out = BoundedReLU(2.5)(x)
    assert float(out.min()) == 0.0 and float(out.max()) == 2.5
    assert torch.equal(out[(x > 0) & (x < 2.5)], x[(x > 0) & (x < 2.5)])


def test_bounded_relu_output_change_is_bounded_whatever_the_weights():
    """Z1: a BReLU layer's output moves by at most t per unit, however large the weights are: by
    min(t, |pre-activation change|) at most, since the clamp to [0, t] is 1-Lipschitz."""
    g = torch.Generator().manual_seed(0)
    t = 0.7
    lin = torch.nn.Linear(10, 50)
    with torch.no_grad():
        lin.weight.copy_(1e4 * torch.randn(50, 10, generator=g))
        lin.bias.zero_()
    x = torch.rand(64, 10, generator=g)
    x2 = x + 0.01 * torch.randn(64, 10, generator=g)
    with torch.no_grad():
        change = (BoundedReLU(t)(lin(x)) - BoundedReLU(t)(lin(x2))).abs()
        pre = (lin(x) - lin(x2)).abs()
    assert bool((change <= torch.clamp(pre, max=t) + 1e-6).all())
    assert float(change.max()) == pytest.approx(t)  # the bound is reached: some unit jumps from 0 to t
    assert float(pre.max()) > 100 * t  # what an unbounded ReLU would pass on


def test_bounded_relu_refuses_non_positive_bound():
    with pytest.raises(ValueError, match="bound"):
        BoundedReLU(0.0)


def test_rbf_probabilities_follow_the_closed_form_and_far_inputs_get_none():
    rbf = RBFNetwork((1, 8, 8), 10)
    x = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rbf.init_centres(x, torch.arange(50) % 10)
    p = rbf.probabilities(x)
    # p_c(x) = exp(−β‖x − μ_c‖²/d), with μ_c the mean of the class-c inputs and β = 4
    mu = torch.stack([x.flatten(1)[torch.arange(50) % 10 == c].mean(0) for c in range(10)])
    d2 = ((x.flatten(1)[:, None, :] - mu[None]) ** 2).sum(-1) / 64
    torch.testing.assert_close(p.detach(), torch.exp(-4.0 * d2), atol=1e-5, rtol=1e-5)
    assert float(rbf.probabilities(torch.full((3, 1, 8, 8), 50.0)).detach().max()) < 1e-6
    # the logits are the one-vs-rest log-odds of those probabilities
    assert torch.allclose(torch.sigmoid(rbf(x)), p, atol=1e-5)


def test_rbf_centre_input_is_confident():
    rbf = RBFNetwork((4,), 2)
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    rbf.init_centres(x, torch.tensor([0, 1]))
    assert float(rbf.probabilities(x).diagonal().min()) > 0.999


@pytest.mark.parametrize("size", [20, 28, 32])
def test_galloway_cnn_shapes(size):
    model = galloway_cnn(3 if size == 32 else 1, 10, n_f=4, input_size=size)
    assert model(torch.zeros(2, 3 if size == 32 else 1, size, size)).shape == (2, 10)


def test_galloway_cnn_refuses_small_inputs():
    with pytest.raises(ValueError, match="input_size"):
        galloway_cnn(input_size=8)


def test_spheres_mlp_low_precision_forward():
    torch.manual_seed(0)
    m = spheres_mlp(5, (16, 16), weight_bits=1, act_bits=2).eval()
    assert m(torch.randn(7, 5)).shape == (7, 2)
