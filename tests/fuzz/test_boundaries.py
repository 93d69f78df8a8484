"""Models built to break at a known offset, pixel and rotation: fuzzing finds the break and shrinks it to the
boundary (within one grid step of the strategy); a model invariant by construction passes."""

from __future__ import annotations

import pytest
import torch

from robtest.fuzz import fuzz
from robtest.strategies import PIXEL, Rotation, rotations

from ._models import CentredLinear, MeanThreshold, PixelWatch, TemplateDistance

ZEROS = torch.zeros(6, dtype=torch.long)


def _replayed_flips(model, x, y, r) -> tuple[int, ...]:
    """The points the reported minimal perturbation flips when applied again, outside the search."""
    assert r.check.description == r.minimal.describe(tuple(x.shape))
    with torch.no_grad():
        return tuple((model(r.minimal.apply(x)).argmax(1) != y).nonzero().flatten().tolist())


@pytest.mark.parametrize(("model", "boundary", "extreme"), [
    (MeanThreshold(0.4), 0.1, (2, 3)),                 # brightest images (2, 3) at 0.3: break above +0.1
    (MeanThreshold(0.05, below=True), -0.15, (0, 5)),  # darkest (0, 5) at 0.2: break below -0.15
], ids=["brighter", "darker"])
def test_offset_shrinks_to_the_known_boundary(constant_images, model, boundary, extreme):
    r = fuzz(model, constant_images, ZEROS, "offsets", database=None, max_examples=50)
    assert not r.passed
    # the smallest failing grid point beyond the boundary: within one 8-bit level (1/255 < 0.01)
    assert abs(r.minimal.offset) > abs(boundary)
    assert abs(r.minimal.offset - boundary) <= PIXEL + 1e-9
    assert r.message().startswith("fuzz offsets: ")
    assert "smallest failing perturbation found: offset " in r.message()
    # one level past the boundary only the images at the extreme flip; the others hold
    assert r.check.flipped == extreme == _replayed_flips(model, constant_images, ZEROS, r)


def test_pixel_shrinks_to_the_known_pixel_and_size():
    x = torch.full((4, 1, 4, 4), 0.5)
    model = PixelWatch(row=2, col=1, base=0.5, tol=0.3)
    r = fuzz(model, x, torch.zeros(4, dtype=torch.long), "pixel_changes", options={"max_pixels": 3},
             database=None, max_examples=150)
    assert not r.passed, r.message()
    assert r.check.flipped == _replayed_flips(model, x, torch.zeros(4, dtype=torch.long), r) == (0, 1, 2, 3)
    (where,) = r.minimal.where((4, 1, 4, 4))  # shrunk to a single changed pixel
    ch, row, col, delta = where
    assert (row, col) == (2, 1)
    assert 0.3 < abs(delta) <= 0.3 + PIXEL + 1e-9
    assert r.check.description == f"pixel (2, 1) {delta:+.3f}"


def _bar() -> torch.Tensor:
    img = torch.zeros(1, 1, 28, 28)
    img[..., 13:15, 4:24] = 1.0
    return img


def test_rotation_shrinks_to_the_known_angle():
    img = _bar()
    # the boundary: the distance a 10° rotation moves the bar; the model flips strictly beyond it
    tau = float((Rotation(10.0).apply(img) - img).norm())
    model = TemplateDistance(img, tau)
    r = fuzz(model, img, torch.zeros(1, dtype=torch.long), rotations(max_degrees=30), database=None,
             max_examples=50)
    assert not r.passed
    assert r.check.flipped == _replayed_flips(model, img, torch.zeros(1, dtype=torch.long), r) == (0,)
    # the independent check: a scan of the grid (0.25°) gives the smallest failing angle of each sign
    grid = [k * 0.25 for k in range(1, 121)]
    dist = {s: next(a for a in grid if float((Rotation(s * a).apply(img) - img).norm()) > tau) for s in (1, -1)}
    assert abs(r.minimal.degrees) == pytest.approx(min(dist.values()))
    assert abs(abs(r.minimal.degrees) - 10.0) <= 0.5


def test_invariant_model_passes_offsets():
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(50, 1, 8, 8, generator=g)   # an offset up to 0.3 never clips
    model = CentredLinear(64)
    top2 = model(x).topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-3  # leave out near-ties that rounding could flip
    assert int(clear.sum()) >= 40
    x = x[clear]
    pred = model(x).argmax(1)
    r = fuzz(model, x, pred, "offsets", database=None, max_examples=100)
    assert r.passed, r.message()
    assert r.examples == 100 and r.first_failure is None
    assert "no perturbation changed a prediction" in r.message()
    # (contrast only scales its logits: invariant too) but pixel noise does change it: the fuzzer is not blind
    assert fuzz(model, x, pred, "contrasts", database=None, max_examples=30).passed
    assert not fuzz(model, x, pred, "gaussian_noises", database=None, max_examples=30).passed


def test_linf_certified_linear_model_passes():
    """A linear model whose every margin exceeds ε·‖w_i − w_j‖₁ cannot change in the L∞ ball: a proof."""
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    x = torch.rand(200, 1, 8, 8)
    with torch.no_grad():
        z = lin(x)
    pred = z.argmax(1)
    w = lin[1].weight.detach()
    eps = 0.02
    worst = torch.stack([(w[pred] - w[j]).abs().sum(1) * eps for j in range(3)], 1)
    margin = z.gather(1, pred[:, None]) - z
    safe = ((margin > worst) | (torch.arange(3) == pred[:, None])).all(1)
    assert int(safe.sum()) >= 20
    r = fuzz(lin, x[safe], pred[safe], "linf_perturbations", options={"eps": eps}, database=None,
             max_examples=100)
    assert r.passed, r.message()
    # and on all points, fuzzing at 10× the radius does find a change
    assert not fuzz(lin, x, pred, "linf_perturbations", options={"eps": 10 * eps}, database=None,
                    max_examples=100).passed


def test_same_seed_same_search(constant_images):
    a = fuzz(MeanThreshold(0.4), constant_images, ZEROS, "offsets", database=None, max_examples=30, seed=3)
    b = fuzz(MeanThreshold(0.4), constant_images, ZEROS, "offsets", database=None, max_examples=30, seed=3)
    assert (a.examples, a.first_failure, a.minimal) == (b.examples, b.first_failure, b.minimal)
