"""offset_invariance: a model blind to brightness by construction loses nothing; a brightness reader does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.errors import InvalidArgument
from robtest.properties import offset_accuracy, offset_drop
from robtest.session import RobustSession


class LeftVsRight(nn.Module):
    """Class 0 when the left half is brighter than the right; ``centered`` subtracts each image's mean first."""

    def __init__(self, centered: bool) -> None:
        super().__init__()
        self.centered = centered

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.centered:
            x = x - x.mean(dim=(1, 2, 3), keepdim=True)
            s = x[..., :4].sum((1, 2, 3)) - x[..., 4:].sum((1, 2, 3))
        else:
            s = x[..., :4].sum((1, 2, 3)) - 16.0  # compares the left half with a fixed brightness
        return torch.stack([s, -s], dim=1)


@pytest.fixture(scope="module")
def halves():
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(300, 1, 8, 8, generator=g)  # interior of the box: offsets of 0.3 never clip
    y = torch.randint(0, 2, (300,), generator=g)
    x[..., :4] += torch.where(y == 0, 0.08, -0.08).view(-1, 1, 1, 1)  # left half brighter for class 0
    return x.clamp(0, 1), y


def test_brightness_blind_model_passes_with_zero_drop(halves):
    with RobustSession(LeftVsRight(centered=True), halves, device="cpu") as s:
        v = s.offset_invariance(max_drop=0.0, offsets=(-0.3, 0.3))
    assert v.passed and v.measurement.value == 0.0
    assert v.measurement.low <= 0.0 <= v.measurement.high < 0.02


def test_brightness_reader_fails(halves):
    with RobustSession(LeftVsRight(centered=False), halves, device="cpu") as s:
        clean = s.accuracy()
        v = s.offset_invariance(max_drop=0.1, offsets=(-0.3, 0.3), rule="confident")
    assert clean.value > 0.95
    assert not v.passed and v.measurement.low > 0.3
    assert "is above the ceiling 0.1" in v.message()


def test_worst_offset_is_at_least_as_bad_as_a_dense_grid(halves):
    # An independent check of the grid-plus-bisection search: no offset on a 10x finer grid does worse.
    model = LeftVsRight(centered=False)
    m = offset_drop(model, halves, offsets=(-0.1, 0.1), grid=11, device="cpu")
    dense = min(offset_accuracy(model, halves, float(c), device="cpu").value for c in torch.linspace(-0.1, 0.1, 101))
    assert m.details["worst_offset_accuracy"] <= dense + 1e-12
    assert m.details["worst_offset_accuracy"] == offset_accuracy(model, halves, m.details["worst_offset"],
                                                                 device="cpu").value


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"offsets": (0.5, -0.5)}, "offsets: expected finite numbers with low <= high but got \\(0.5, -0.5\\)"),
     ({"offsets": 0.3}, "offsets: expected a pair \\(low, high\\) of numbers but got 0.3"),
     ({"grid": 0}, "grid: expected an integer >= 1 but got 0"),
     ({"tol": -1}, "tol: expected a number in \\(0, inf\\] but got -1")],
    ids=["reversed", "scalar", "grid", "tol"],
)
def test_bad_arguments(halves, kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        offset_drop(LeftVsRight(centered=True), halves, device="cpu", **kwargs)


def test_empty_data_is_an_error_never_a_verdict():
    from robtest.errors import InputError

    empty = (torch.rand(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    match = "data: expected at least one sample but got an empty dataset"
    with RobustSession(LeftVsRight(centered=True), empty, device="cpu") as s:
        with pytest.raises(InputError, match=match):
            s.offset_invariance(max_drop=0.1)
    with pytest.raises(InputError, match=match):
        offset_drop(LeftVsRight(centered=True), empty, device="cpu")
    with pytest.raises(InputError, match=match):
        offset_accuracy(LeftVsRight(centered=True), empty, 0.1, device="cpu")


def test_channels_last_data_is_caught_at_the_first_forward(halves):
    from robtest.errors import InputError

    x, y = halves
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    with pytest.raises(InputError, match=r"looks channels-last \(N, H, W, C\); use x.permute\(0, 3, 1, 2\)"):
        offset_drop(cnn, (x.permute(0, 2, 3, 1), y), device="cpu")
