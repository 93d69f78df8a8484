"""Every registered attack, every norm: results lie in the box and the ε-ball (hypothesis shapes and ε)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from robtest.attacks import available_attacks, get_attack
from robtest.attacks._norms import get_norm


class _Conv(nn.Module):
    def __init__(self, c: int, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


# Box and ball do not depend on the budget: the iterative attacks run short here so the walk stays fast.
_SHORT = {"apgd": {"steps": 5}, "apgd_t": {"steps": 5, "targets": 2}, "square": {"queries": 20},
          "auto": {"steps": 5, "targets": 2, "queries": 20}}


def _options(name, model):
    """The short budget; transfer crafts on a second model of the same shape (a different initialisation)."""
    if name == "transfer":
        surrogate = _Conv(model.conv.in_channels).eval()
        return {"surrogate": surrogate, "steps": 3}
    return _SHORT.get(name, {})

shapes = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7))


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", available_attacks())
@given(shape=shapes, eps_frac=st.floats(0.0, 0.45), seed=st.integers(0, 2**16),
       bounds=st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)]))
def test_in_box_and_ball(name, norm, shape, eps_frac, seed, bounds):
    lo, hi = bounds
    torch.manual_seed(seed)
    model = _Conv(shape[1]).eval()
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(shape, generator=g)
    y = torch.randint(0, 4, (shape[0],), generator=g)
    width = (hi - lo) if norm == "linf" else (hi - lo) * (x[0].numel() ** 0.5)
    eps = eps_frac * width
    x_adv = get_attack(name).fn(model, x, y, eps=eps, norm=norm, bounds=bounds, generator=g, **_options(name, model))
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= lo and float(x_adv.max()) <= hi
    size = get_norm(norm).size(x_adv - x)
    # Rounding x + δ to float32 moves each coordinate by up to one ulp of the box's largest value.
    ulp = torch.finfo(x.dtype).eps * max(abs(lo), abs(hi), 1.0) * (x[0].numel() ** 0.5 if norm == "l2" else 1.0)
    assert bool((size <= eps * (1 + 1e-5) + 1e-6 + ulp).all())


def test_registry_lists_the_attacks_and_rejects_unknown_names():
    known = {"fgsm", "pgd", "step_ll", "rfgsm", "apgd", "apgd_t", "square", "auto", "transfer"}
    assert known <= set(available_attacks())
    from robtest.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="expected one of .*fgsm.*pgd.* but got 'pgdd'"):
        get_attack("pgdd")


@pytest.mark.parametrize("name", available_attacks())
def test_per_sample_eps(name):
    torch.manual_seed(0)
    model = _Conv(1).eval()
    x, y = torch.rand(4, 1, 5, 5), torch.tensor([0, 1, 2, 3])
    eps = torch.tensor([0.0, 0.01, 0.05, 0.1])
    x_adv = get_attack(name).fn(model, x, y, eps=eps, generator=torch.Generator().manual_seed(0),
                                **_options(name, model))
    size = (x_adv - x).flatten(1).abs().amax(1)
    assert bool((size <= eps + 1e-6).all())
    assert float(size[0]) == 0.0
