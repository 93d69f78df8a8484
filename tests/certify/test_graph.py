"""Tracing: every supported layer kind becomes ops that compute what the model computes; anything else is a
clear error that names the layer and says to use the attack-only verdict."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.certify import trace
from robtest.certify.graph import Affine, ReLU, Sum
from robtest.errors import UnsupportedModelError
from robtest.models import Normalized
from robtest.zoo import BoundedReLU, QuantAct, galloway_cnn, small_cnn
from tests.certify._nets import layer_zoo

ZOO = layer_zoo()


@pytest.mark.parametrize("name", list(ZOO), ids=list(ZOO))
def test_graph_computes_the_model(name):
    model = ZOO[name]
    x = torch.rand(7, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    g = trace(model, x)
    with torch.no_grad():
        assert torch.allclose(g.forward(x.double()), model(x).double(), atol=1e-5)
        assert torch.allclose(g.forward(x), model(x), atol=1e-5)  # float32 too (IBP training runs there)
    assert all(isinstance(op, (Affine, ReLU, Sum)) for op in g.ops[1:])


@pytest.mark.parametrize("model, shape", [(small_cnn(width=4), (1, 8, 8)), (galloway_cnn(n_f=2), (1, 28, 28))],
                         ids=["small_cnn", "galloway_cnn"])
def test_zoo_cnns_trace(model, shape):
    x = torch.rand(2, *shape)
    with torch.no_grad():
        assert torch.allclose(trace(model.eval(), x).forward(x), model(x), atol=1e-5)


def test_residual_and_normalized_ops():
    g = trace(ZOO["residual"], torch.rand(2, 3, 4, 4))
    sums = [op for op in g.ops if isinstance(op, Sum)]
    assert [op.signs for op in sums] == [(1.0, 1.0), (1.0, -1.0)]
    g = trace(ZOO["normalized-unequal-std"], torch.rand(2, 3, 4, 4))
    assert [type(op).__name__ for op in g.ops[:3]] == ["Input", "Scale", "Scale"]  # (x − mean) / std


class _Branchy(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


class _Product(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x) * self.b(x)


UNSUPPORTED = [
    ("maxpool", nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 2)), (1, 4, 4), "'0' (MaxPool2d)"),
    ("tanh", nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.Tanh(), nn.Linear(4, 2)), (1, 4, 4), "'2' (Tanh)"),
    ("bounded-relu", nn.Sequential(nn.Flatten(), nn.Linear(16, 4), BoundedReLU(), nn.Linear(4, 2)), (1, 4, 4),
     "'clamp' in '2' (BoundedReLU)"),
    ("rounding-front", nn.Sequential(QuantAct(2), nn.Flatten(), nn.Linear(16, 2)), (1, 4, 4), "(QuantAct)"),
    ("control-flow", _Branchy(), (4,), "torch.fx could not trace"),
    ("product-of-branches", _Product(), (4,), "two input-dependent tensors"),
    ("adaptive-pool-not-divisible", nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Flatten()), (1, 4, 4),
     "(AdaptiveAvgPool2d) from 4×4 to 3×3"),
    ("batchnorm-without-running-stats", nn.Sequential(nn.BatchNorm2d(1, track_running_stats=False), nn.Flatten()),
     (1, 2, 2), "without running statistics"),
    ("reflect-padding", nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), nn.Flatten()),
     (1, 4, 4), "padding 'reflect'"),
]


@pytest.mark.parametrize("model, shape, named", [u[1:] for u in UNSUPPORTED], ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_layer_is_named_with_what_to_do(model, shape, named):
    with pytest.raises(UnsupportedModelError) as err:
        trace(model.eval(), torch.rand(2, *shape))
    msg = str(err.value)
    assert named in msg
    assert "attack-only verdict" in msg and "supported:" in msg


def test_unsupported_error_is_a_robtest_error():
    import robtest

    assert issubclass(UnsupportedModelError, robtest.RobtestError)
    assert robtest.UnsupportedModelError is UnsupportedModelError


def test_graph_reads_the_parameters_live():
    """The ops hold the modules, not copies: training updates what the graph computes."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(3, 1, 2, 2)
    g = trace(model, x)
    with torch.no_grad():
        model[1].bias.add_(1.0)
        assert torch.allclose(g.forward(x), model(x))


def test_tracing_leaves_a_train_mode_model_as_it_was():
    model = Normalized(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(32, 2)), mean=[0.5], std=[0.2]).train()
    stats = model.model[1].running_mean.clone()
    trace(model, torch.rand(4, 1, 4, 4))
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model.model[1].running_mean, stats)  # the shape pass ran in eval mode
