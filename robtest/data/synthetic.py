"""Synthetic data: Gilmer et al.'s concentric spheres, and Gaussian / uniform noise images.

Everything is drawn on the host from a seeded ``torch.Generator``: same arguments, same tensors, on the CPU.
"""

from __future__ import annotations

import torch

from robtest.errors import InvalidArgument
from robtest.validation import integer

__all__ = ["spheres", "gaussian_noise", "uniform_noise", "SUPPORTS"]

SUPPORTS = ("all", "half", "quadrants")


def spheres(samples: int = 1000, *, dim: int = 2, radii: tuple[float, float] = (1.0, 1.3), support: str = "all",
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points uniform on two concentric ``dim``-spheres (Gilmer et al. 2018): ``(x (N, dim), y (N,))``.

    Class 0 lies on the sphere of radius ``radii[0]``, class 1 on ``radii[1]``, half the points each.
    ``support`` keeps part of the sphere, as Galloway et al. 2018 train on it and test on the whole:
    ``"half"`` keeps ``x_0 ≥ 0``; ``"quadrants"`` removes two opposing quadrants (keeps ``x_0·x_1 ≥ 0``).
    ``samples`` is the number drawn before that selection.

    >>> x, y = spheres(4, dim=3, seed=0)
    >>> [round(float(r), 3) for r in x.norm(dim=1)], y.tolist()
    ([1.0, 1.3, 1.0, 1.3], [0, 1, 0, 1])
    """
    if support not in SUPPORTS:
        raise InvalidArgument(f"support: expected one of {SUPPORTS} but got {support!r}")
    integer("dim", dim, low=2 if support == "quadrants" else 1)
    if not (len(radii) == 2 and 0 < radii[0] < radii[1]):
        raise InvalidArgument(f"radii: expected (inner, outer) with 0 < inner < outer but got {radii!r}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(samples, dim, generator=g, device="cpu")
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    y = torch.arange(samples, device="cpu") % 2
    x = x * torch.tensor(radii, dtype=x.dtype, device="cpu")[y][:, None]
    if support == "half":
        keep = x[:, 0] >= 0
    elif support == "quadrants":
        keep = x[:, 0] * x[:, 1] >= 0
    else:
        keep = torch.ones(samples, dtype=torch.bool, device="cpu")
    return x[keep], y[keep]


def gaussian_noise(samples: int, shape: tuple[int, ...] = (1, 8, 8), *, mean: float = 0.0, std: float = 1.0,
                   clip: tuple[float, float] | None = None, seed: int = 0) -> torch.Tensor:
    """``samples`` images of N(mean, std²) pixels (Goodfellow et al.'s rubbish inputs), optionally clipped.

    >>> gaussian_noise(3, (1, 2, 2), mean=0.5, std=0.1, clip=(0.0, 1.0)).shape
    torch.Size([3, 1, 2, 2])
    """
    if not std >= 0:
        raise InvalidArgument(f"std: expected a number >= 0 but got {std!r}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = mean + std * torch.randn(samples, *shape, generator=g, device="cpu")
    return x if clip is None else x.clamp(*clip)


def uniform_noise(samples: int, shape: tuple[int, ...] = (1, 8, 8), *, low: float = 0.0, high: float = 1.0,
                  seed: int = 0) -> torch.Tensor:
    """``samples`` images of U(low, high) pixels.

    >>> float(uniform_noise(100, (1, 2, 2)).max()) <= 1.0
    True
    """
    if not low < high:
        raise InvalidArgument(f"low, high: expected low < high but got {low!r}, {high!r}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    return low + (high - low) * torch.rand(samples, *shape, generator=g, device="cpu")
