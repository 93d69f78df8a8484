"""Synthetic data: the spheres' geometry, the noise sets' shapes and seeds."""

from __future__ import annotations

import pytest
import torch

from robtest.data import gaussian_noise, spheres, uniform_noise
from robtest.errors import InvalidArgument


@pytest.mark.parametrize("dim", [2, 10, 100])
def test_spheres_lie_on_their_radii(dim):
    x, y = spheres(1000, dim=dim, radii=(1.0, 1.3), seed=0)
    r = x.norm(dim=1)
    assert torch.allclose(r[y == 0], torch.ones(int((y == 0).sum())), atol=1e-5)
    assert torch.allclose(r[y == 1], torch.full((int((y == 1).sum()),), 1.3), atol=1e-5)
    assert int((y == 0).sum()) == int((y == 1).sum()) == 500


def test_spheres_are_spread_over_the_sphere():
    x, _ = spheres(4000, dim=3, seed=1)
    directions = x / x.norm(dim=1, keepdim=True)
    assert float(directions.mean(0).abs().max()) < 0.05


def test_spheres_half_and_quadrant_supports():
    half, _ = spheres(2000, dim=5, support="half", seed=0)
    assert bool((half[:, 0] >= 0).all()) and 800 < half.shape[0] < 1200
    quad, _ = spheres(2000, dim=2, support="quadrants", seed=0)
    assert bool((quad[:, 0] * quad[:, 1] >= 0).all()) and 800 < quad.shape[0] < 1200


def test_spheres_are_seeded():
    assert torch.equal(spheres(50, seed=3)[0], spheres(50, seed=3)[0])
    assert not torch.equal(spheres(50, seed=3)[0], spheres(50, seed=4)[0])


@pytest.mark.parametrize("kwargs", [{"support": "third"}, {"radii": (1.3, 1.0)}, {"dim": 0}],
                         ids=["support", "radii", "dim"])
def test_spheres_bad_arguments(kwargs):
    with pytest.raises(InvalidArgument):
        spheres(10, **kwargs)


def test_noise_sets():
    g = gaussian_noise(2000, (1, 4, 4), mean=0.5, std=0.1, seed=0)
    assert g.shape == (2000, 1, 4, 4) and abs(float(g.mean()) - 0.5) < 0.01 and abs(float(g.std()) - 0.1) < 0.01
    c = gaussian_noise(100, (3,), std=5.0, clip=(0.0, 1.0), seed=0)
    assert float(c.min()) >= 0 and float(c.max()) <= 1
    u = uniform_noise(2000, (2,), low=-1.0, high=1.0, seed=0)
    assert float(u.min()) >= -1 and float(u.max()) <= 1 and abs(float(u.mean())) < 0.05
    assert torch.equal(uniform_noise(5, seed=2), uniform_noise(5, seed=2))
    with pytest.raises(InvalidArgument):
        uniform_noise(5, low=1.0, high=0.0)
    with pytest.raises(InvalidArgument):
        gaussian_noise(5, std=-1.0)
