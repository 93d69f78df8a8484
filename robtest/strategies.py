"""Hypothesis strategies that draw input perturbations, each shrinking toward the identity.

Every strategy draws a *perturbation object*: a small frozen dataclass with ``apply(x)`` (batched images
``(N, C, H, W)`` in [0, 1] in, the perturbed batch clipped to [0, 1] out) and ``describe()`` (the change in
words: ``"offset +0.118 on every pixel"``). Magnitudes are drawn as integers on a grid (``resolution``) and
pixel sets as prefixes of a seeded order, so hypothesis's shrinker moves toward zero, toward few pixels and
toward the top-left corner: the minimal failing example is the smallest perturbation that still fails, to
within one ``resolution`` step.

Positions are drawn in a shape-free way (a fraction of the height and width, on a grid of 256), so one
strategy serves 8×8 digits and 224×224 photographs alike.

>>> from hypothesis import find
>>> import torch
>>> x = torch.full((2, 1, 4, 4), 0.3)
>>> d = find(offsets(max_offset=0.3), lambda d: float(d.apply(x).mean()) > 0.4)
>>> d.describe()
'offset +0.102 on every pixel'

torch and torchvision load inside ``apply``; importing this module costs only hypothesis.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis import strategies as st

from robtest.errors import InvalidArgument
from robtest.validation import integer, number

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Perturbation", "Offset", "Gain", "Contrast", "LinfPattern", "L2Pattern", "GaussianNoise", "SaltAndPepper",
    "Translation", "Rotation", "Blur", "Occlusion", "PixelChanges", "Direction", "Composition",
    "offsets", "gains", "contrasts", "linf_perturbations", "l2_perturbations", "gaussian_noises",
    "salt_and_pepper_noises", "translations", "rotations", "blurs", "occlusions", "pixel_changes",
    "directed_perturbations", "compositions", "STRATEGIES", "get_strategy",
]

PIXEL = 1 / 255
_GRID = 256  # positions: a fraction k/256 of the height or width
_ALL = 1 << 20  # "every pixel": more pixels than any image has


# -- argument checks (InvalidArgument "expected ... but got ...") ------------------------------------------------

def _number(name: str, value: Any, *, low: float = 0.0, high: float = math.inf, strict_low: bool = True) -> float:
    lo = f"> {low:g}" if strict_low else f">= {low:g}"
    hi = "" if high == math.inf else f" and <= {high:g}"
    return number(name, value, low=low, high=high, strict_low=strict_low, expected=f"a number {lo}{hi}")


def _count(name: str, value: Any, *, low: int = 1) -> int:
    return integer(name, value, low=low)


def _resolution(value: Any, top: float, default: float) -> float:
    r = default if value is None else _number("resolution", value)
    if r > top:
        raise InvalidArgument(f"resolution: expected a step no larger than the range {top:g} but got {r!r}")
    return r


def _magnitudes(top: float, resolution: float) -> st.SearchStrategy[float]:
    """0, r, 2r, ... up to ``top``: integers shrink exactly, floats would shrink to 'simple' values instead."""
    n = int(math.floor(top / resolution + 1e-9))
    return st.integers(0, n).map(lambda k: min(k * resolution, top))


def _signed(top: float, resolution: float) -> st.SearchStrategy[float]:
    # magnitude first, then the sign: shrinks to 0, then to the positive side
    return st.tuples(_magnitudes(top, resolution), st.booleans()).map(lambda t: -t[0] if t[1] and t[0] else t[0])


def _positions() -> st.SearchStrategy[int]:
    return st.integers(0, _GRID - 1)


def _at(level: int, size: int) -> int:
    return min(size - 1, level * size // _GRID)


def _seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**16 - 1)


def _clip(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


def _pixel_mask(shape: tuple[int, ...], pixels: int, seed: int, device: Any) -> torch.Tensor | None:
    """A 0/1 mask of ``pixels`` elements of one image (C, H, W): a prefix of a seeded order, so fewer pixels
    is a subset of more (the shrinker's moves stay monotone). None means every element. Drawn on the host (one
    image's worth) and moved: the same mask on every device."""
    import torch

    numel = math.prod(shape)
    if pixels >= numel:
        return None
    g = torch.Generator(device="cpu").manual_seed(seed + 1_000_003)
    idx = torch.randperm(numel, generator=g, device="cpu")[:pixels]
    mask = torch.zeros(numel, device="cpu")
    mask[idx] = 1.0
    return mask.view(shape).to(device)


def _rows_rng(seed: int, x: torch.Tensor) -> Any:
    """Per-image random streams for a whole batch, on the batch's device: row ``i`` draws from stream ``i``."""
    import torch

    from robtest.rng import SampleRNG

    return SampleRNG(seed, torch.arange(x.shape[0], device=x.device))


def _where(pixels: int, shape: tuple[int, ...] | None) -> str:
    if pixels >= _ALL:
        return "every pixel"
    if shape is not None and pixels >= math.prod(shape[-3:]):
        return "every pixel"
    return f"{pixels} pixel{'s' if pixels != 1 else ''}"


# -- perturbations -------------------------------------------------------------------------------------------

class Perturbation:
    """Base class: ``apply`` maps a batch (N, C, H, W) in [0, 1] to the perturbed batch, clipped to [0, 1]."""

    #: the strategy that draws it (for records and artifact names)
    kind: ClassVar[str] = "perturbation"

    def apply(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x)

    def describe(self, shape: tuple[int, ...] | None = None) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_identity(self) -> bool:
        return False

    def to_record(self) -> dict[str, Any]:
        """JSON-safe parameters (tensors left out)."""
        out: dict[str, Any] = {"kind": self.kind, "description": self.describe()}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, (int, float, str, bool)):
                out[f.name] = v
            elif isinstance(v, tuple) and all(isinstance(e, (int, float)) for e in v):
                out[f.name] = list(v)
            elif isinstance(v, tuple) and all(isinstance(e, Perturbation) for e in v):
                out[f.name] = [e.to_record() for e in v]
            elif isinstance(v, tuple):
                out[f.name] = [list(e) if isinstance(e, tuple) else e for e in v]
        return out


@dataclass(frozen=True)
class Offset(Perturbation):
    """Add ``offset`` to every pixel (a DC shift; Galloway et al. 2018's gradient-free attack)."""

    offset: float
    kind: ClassVar[str] = "offsets"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _clip(x + self.offset)

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"offset {self.offset:+.3f} on every pixel"

    @property
    def is_identity(self) -> bool:
        return self.offset == 0


@dataclass(frozen=True)
class Gain(Perturbation):
    """Multiply every pixel by ``1 + change`` (exposure)."""

    change: float
    kind: ClassVar[str] = "gains"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _clip(x * (1.0 + self.change))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"gain ×{1 + self.change:.3f} on every pixel"

    @property
    def is_identity(self) -> bool:
        return self.change == 0


@dataclass(frozen=True)
class Contrast(Perturbation):
    """Scale each image's deviation from its own mean by ``1 + change``."""

    change: float
    kind: ClassVar[str] = "contrasts"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_identity:  # m + (x - m) is not exactly x in floating point
            return x.clone()
        m = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        return _clip(m + (1.0 + self.change) * (x - m))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"contrast ×{1 + self.change:.3f} about each image's mean"

    @property
    def is_identity(self) -> bool:
        return self.change == 0


@dataclass(frozen=True)
class LinfPattern(Perturbation):
    """±``eps`` on ``pixels`` elements of each image, signs from a seeded pattern (the same for every image)."""

    eps: float
    pixels: int
    seed: int
    kind: ClassVar[str] = "linf_perturbations"

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        # one image's pattern, drawn on the host and moved: the same pattern on every device
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        d = (torch.randint(0, 2, x.shape[1:], generator=g, device="cpu") * 2 - 1).to(x.device, x.dtype) * self.eps
        mask = _pixel_mask(tuple(x.shape[1:]), self.pixels, self.seed, x.device)
        return d if mask is None else d * mask

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _clip(x + self.delta(x))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"L∞ ±{self.eps:.3f} sign pattern #{self.seed} on {_where(self.pixels, shape)}"

    @property
    def is_identity(self) -> bool:
        return self.eps == 0


@dataclass(frozen=True)
class L2Pattern(Perturbation):
    """A seeded Gaussian direction on ``pixels`` elements, scaled to L2 norm ``eps`` per image."""

    eps: float
    pixels: int
    seed: int
    kind: ClassVar[str] = "l2_perturbations"

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        g = torch.Generator(device="cpu").manual_seed(self.seed)  # one image's direction, as for LinfPattern
        d = torch.randn(x.shape[1:], generator=g, device="cpu").to(x.device, x.dtype)
        mask = _pixel_mask(tuple(x.shape[1:]), self.pixels, self.seed, x.device)
        if mask is not None:
            d = d * mask
        return d * (self.eps / d.norm().clamp_min(1e-12))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _clip(x + self.delta(x))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"L2 {self.eps:.3f} Gaussian direction #{self.seed} on {_where(self.pixels, shape)}"

    @property
    def is_identity(self) -> bool:
        return self.eps == 0


@dataclass(frozen=True)
class GaussianNoise(Perturbation):
    """Independent N(0, sigma²) noise on every element of every image (seeded; image ``i`` of the batch gets
    stream ``i`` of :class:`robtest.rng.SampleRNG`, drawn on the batch's device: the same noise on every
    device)."""

    sigma: float
    seed: int
    kind: ClassVar[str] = "gaussian_noises"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _clip(x + self.sigma * _rows_rng(self.seed, x).randn(tuple(x.shape), device=x.device).to(x.dtype))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"Gaussian noise σ={self.sigma:.3f} (seed {self.seed})"

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0


@dataclass(frozen=True)
class SaltAndPepper(Perturbation):
    """A ``fraction`` of the elements set to 0 or 1 (half each, seeded; drawn as :class:`GaussianNoise` is)."""

    fraction: float
    seed: int
    kind: ClassVar[str] = "salt_and_pepper_noises"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        u = _rows_rng(self.seed, x).rand(tuple(x.shape), device=x.device)
        return torch.where(u < self.fraction / 2, 1.0, torch.where(u < self.fraction, 0.0, x))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"salt-and-pepper noise on {self.fraction:.1%} of the pixels (seed {self.seed})"

    @property
    def is_identity(self) -> bool:
        return self.fraction == 0


@dataclass(frozen=True)
class Translation(Perturbation):
    """Shift by ``dx`` pixels right and ``dy`` down; what comes in is black."""

    dx: int
    dy: int
    kind: ClassVar[str] = "translations"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_identity:
            return x.clone()
        from torchvision.transforms.v2 import functional as TF

        return _clip(TF.affine(x, angle=0.0, translate=[self.dx, self.dy], scale=1.0, shear=[0.0, 0.0]))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"shift {self.dx:+d} px right, {self.dy:+d} px down"

    @property
    def is_identity(self) -> bool:
        return self.dx == 0 and self.dy == 0


@dataclass(frozen=True)
class Rotation(Perturbation):
    """Rotate by ``degrees`` (counter-clockwise) about the centre, bilinear; corners come in black."""

    degrees: float
    kind: ClassVar[str] = "rotations"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_identity:
            return x.clone()
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        return _clip(TF.rotate(x, self.degrees, interpolation=InterpolationMode.BILINEAR))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"rotation {self.degrees:+.2f}°"

    @property
    def is_identity(self) -> bool:
        return self.degrees == 0


@dataclass(frozen=True)
class Blur(Perturbation):
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel ±3σ, at most the image size)."""

    sigma: float
    kind: ClassVar[str] = "blurs"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_identity:
            return x.clone()
        from torchvision.transforms.v2 import functional as TF

        side = min(x.shape[-2:])
        k = min(2 * math.ceil(3 * self.sigma) + 1, 2 * side - 1)
        return _clip(TF.gaussian_blur(x, kernel_size=[k, k], sigma=[self.sigma, self.sigma]))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return f"Gaussian blur σ={self.sigma:.2f} px"

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0


@dataclass(frozen=True)
class Occlusion(Perturbation):
    """A ``size``×``size`` patch of grey level ``value`` at (``row``, ``col``) (grid positions, see the module)."""

    size: int
    row: int
    col: int
    value: float
    kind: ClassVar[str] = "occlusions"

    def box(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        h, w = shape[-2:]
        s = min(self.size, h, w)
        return s, min(_at(self.row, h), h - s), min(_at(self.col, w), w - s)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        if self.size:
            s, r, c = self.box(tuple(x.shape))
            out[..., r:r + s, c:c + s] = self.value
        return out

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        if shape is None:
            return f"{self.size}×{self.size} patch of grey {self.value:.3f} at grid ({self.row}, {self.col})/256"
        s, r, c = self.box(shape)
        return f"{s}×{s} patch of grey {self.value:.3f} at row {r}, column {c}"

    @property
    def is_identity(self) -> bool:
        return self.size == 0


@dataclass(frozen=True)
class PixelChanges(Perturbation):
    """Add ``change`` to single elements ``(channel, row, col, change)`` (grid positions, see the module): L0."""

    changes: tuple[tuple[int, int, int, float], ...]
    kind: ClassVar[str] = "pixel_changes"

    def where(self, shape: tuple[int, ...]) -> list[tuple[int, int, int, float]]:
        c, h, w = shape[-3:]
        return [(ch % c, _at(r, h), _at(q, w), d) for ch, r, q, d in self.changes]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        for ch, r, q, d in self.where(tuple(x.shape)):
            out[:, ch, r, q] += d
        return _clip(out)

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        if not self.changes:
            return "no pixel changed"
        if shape is None:
            items = [f"grid ({r}, {q})/256 ch {ch} {d:+.3f}" for ch, r, q, d in self.changes]
        else:
            multi = shape[-3] > 1
            items = [f"pixel ({r}, {q}){f' ch {ch}' if multi else ''} {d:+.3f}" for ch, r, q, d in self.where(shape)]
        return ", ".join(items)

    @property
    def is_identity(self) -> bool:
        return all(d == 0 for *_, d in self.changes)


@dataclass(frozen=True, eq=False)
class Direction(Perturbation):
    """``eps`` along a given direction (e.g. the loss gradient's sign), on its ``pixels`` largest elements.

    ``direction`` has the shape of one image (C, H, W: the same step for all) or of the whole batch (N, C, H, W:
    one step per image, only for that batch). ``norm="linf"`` steps ``eps·sign``; ``"l2"`` has L2 norm ``eps``.
    """

    direction: Any
    eps: float
    pixels: int
    norm: str = "linf"
    label: str = "gradient"
    kind: ClassVar[str] = "directed_perturbations"

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        d = self.direction.to(device=x.device, dtype=x.dtype)
        if d.shape != x.shape and d.shape != x.shape[1:]:
            raise InvalidArgument(f"Direction: expected a direction of shape {tuple(x.shape)} or "
                                  f"{tuple(x.shape[1:])} but got {tuple(d.shape)}")
        flat = d.reshape(-1, math.prod(x.shape[1:]))
        k = min(self.pixels, flat.shape[1])
        if k < flat.shape[1]:
            keep = torch.zeros_like(flat)
            keep.scatter_(1, flat.abs().topk(k, dim=1).indices, 1.0)
            flat = flat * keep
        if self.norm == "linf":
            flat = flat.sign() * self.eps
        else:
            flat = flat * (self.eps / flat.norm(dim=1, keepdim=True).clamp_min(1e-12))
        return flat.view(d.shape)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _clip(x + self.delta(x))

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        sym = "L∞ ±" if self.norm == "linf" else "L2 "
        where = _where(self.pixels, shape)
        where = where if where == "every pixel" else f"its {where} of largest magnitude"
        return f"{sym}{self.eps:.3f} along the {self.label} on {where}"

    @property
    def is_identity(self) -> bool:
        return self.eps == 0

    def __repr__(self) -> str:
        return f"Direction({self.label!r}, eps={self.eps!r}, pixels={self.pixels!r}, norm={self.norm!r})"


@dataclass(frozen=True)
class Composition(Perturbation):
    """Several perturbations applied in order."""

    steps: tuple[Perturbation, ...]
    kind: ClassVar[str] = "compositions"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        for s in self.steps:
            x = s.apply(x)
        return x if self.steps else x.clone()

    def describe(self, shape: tuple[int, ...] | None = None) -> str:
        return " then ".join(s.describe(shape) for s in self.steps) or "no change"

    @property
    def is_identity(self) -> bool:
        return all(s.is_identity for s in self.steps)


# -- strategies --------------------------------------------------------------------------------------------

def offsets(*, max_offset: float = 0.3, resolution: float | None = None) -> st.SearchStrategy[Offset]:
    """DC offsets in [-max_offset, max_offset] on a grid of ``resolution`` (default one 8-bit level, 1/255).

    >>> from hypothesis import find
    >>> find(offsets(max_offset=0.1), lambda d: d.offset < -0.05).describe()
    'offset -0.051 on every pixel'
    """
    top = _number("max_offset", max_offset, high=1.0)
    return st.builds(Offset, _signed(top, _resolution(resolution, top, min(PIXEL, top))))


def gains(*, max_change: float = 0.5, resolution: float | None = None) -> st.SearchStrategy[Gain]:
    """Multiplicative gains ``1 + c`` with |c| <= max_change (< 1)."""
    top = _number("max_change", max_change, high=0.999)
    return st.builds(Gain, _signed(top, _resolution(resolution, top, min(PIXEL, top))))


def contrasts(*, max_change: float = 0.5, resolution: float | None = None) -> st.SearchStrategy[Contrast]:
    """Contrast changes ``1 + c`` about each image's mean, |c| <= max_change (< 1)."""
    top = _number("max_change", max_change, high=0.999)
    return st.builds(Contrast, _signed(top, _resolution(resolution, top, min(PIXEL, top))))


def linf_perturbations(*, eps: float, max_pixels: int = _ALL, resolution: float | None = None
                       ) -> st.SearchStrategy[LinfPattern]:
    """L∞-bounded sign patterns: amplitude in [0, eps], on 1..max_pixels elements, a seeded sign pattern.

    Shrinks toward amplitude 0, toward fewer pixels (each smaller set inside the larger) and pattern #0.
    """
    top = _number("eps", eps, high=1.0)
    _count("max_pixels", max_pixels)
    return st.builds(LinfPattern, _magnitudes(top, _resolution(resolution, top, min(PIXEL, top / 16))),
                     st.integers(1, max_pixels), _seeds())


def l2_perturbations(*, eps: float, max_pixels: int = _ALL, resolution: float | None = None
                     ) -> st.SearchStrategy[L2Pattern]:
    """L2-bounded seeded Gaussian directions with norm in [0, eps] on 1..max_pixels elements."""
    top = _number("eps", eps)
    _count("max_pixels", max_pixels)
    return st.builds(L2Pattern, _magnitudes(top, _resolution(resolution, top, top / 64)),
                     st.integers(1, max_pixels), _seeds())


def gaussian_noises(*, max_sigma: float = 0.1, resolution: float | None = None) -> st.SearchStrategy[GaussianNoise]:
    """Gaussian pixel noise with standard deviation in [0, max_sigma]."""
    top = _number("max_sigma", max_sigma, high=1.0)
    return st.builds(GaussianNoise, _magnitudes(top, _resolution(resolution, top, min(PIXEL, top / 16))), _seeds())


def salt_and_pepper_noises(*, max_fraction: float = 0.05, resolution: float | None = None
                           ) -> st.SearchStrategy[SaltAndPepper]:
    """Salt-and-pepper noise on a fraction in [0, max_fraction] of the elements."""
    top = _number("max_fraction", max_fraction, high=1.0)
    return st.builds(SaltAndPepper, _magnitudes(top, _resolution(resolution, top, top / 64)), _seeds())


def translations(*, max_shift: int = 2) -> st.SearchStrategy[Translation]:
    """Whole-pixel shifts with |dx|, |dy| <= max_shift."""
    m = _count("max_shift", max_shift)
    return st.builds(Translation, _signed(m, 1).map(int), _signed(m, 1).map(int))


def rotations(*, max_degrees: float = 15.0, resolution: float = 0.25) -> st.SearchStrategy[Rotation]:
    """Rotations by at most ``max_degrees`` either way, on a grid of ``resolution`` degrees."""
    top = _number("max_degrees", max_degrees, high=180.0)
    return st.builds(Rotation, _signed(top, _resolution(resolution, top, 0.25)))


def blurs(*, max_sigma: float = 1.0, resolution: float = 0.02) -> st.SearchStrategy[Blur]:
    """Gaussian blurs with σ in [0, max_sigma] pixels."""
    top = _number("max_sigma", max_sigma, high=10.0)
    return st.builds(Blur, _magnitudes(top, _resolution(resolution, top, 0.02)))


def occlusions(*, max_size: int = 4) -> st.SearchStrategy[Occlusion]:
    """Square patches of side 0..max_size anywhere in the image, filled with one grey level.

    Shrinks toward a smaller patch, the top-left corner and black.
    """
    m = _count("max_size", max_size)
    return st.builds(Occlusion, st.integers(0, m), _positions(), _positions(), _magnitudes(1.0, PIXEL))


def pixel_changes(*, max_pixels: int = 3, max_change: float = 1.0, resolution: float | None = None
                  ) -> st.SearchStrategy[PixelChanges]:
    """Changes of at most ``max_pixels`` single elements by at most ``max_change`` each (an L0 budget).

    Shrinks toward fewer changed pixels, smaller changes and the top-left corner.
    """
    k = _count("max_pixels", max_pixels)
    top = _number("max_change", max_change, high=1.0)
    change = st.tuples(st.integers(0, 63), _positions(), _positions(),
                       _signed(top, _resolution(resolution, top, min(PIXEL, top))))
    # zero changes are dropped: the shrinker zeroes an entry more easily than it deletes it
    return st.builds(PixelChanges, st.lists(change, min_size=1, max_size=k).map(
        lambda cs: tuple(c for c in cs if c[3] != 0)))


def directed_perturbations(*, direction: torch.Tensor, eps: float, norm: str = "linf", max_pixels: int = _ALL,
                           resolution: float | None = None, label: str = "gradient"
                           ) -> st.SearchStrategy[Direction]:
    """Steps of size in [0, eps] along ``direction`` (e.g. a loss gradient), on its 1..max_pixels largest elements.

    What :func:`robtest.fuzz.fuzz` adds in guided mode: a coverage of directions random sign patterns miss,
    still shrinking toward a small step on few pixels.
    """
    if norm not in ("linf", "l2"):
        raise InvalidArgument(f"norm: expected 'linf' or 'l2' but got {norm!r}")
    top = _number("eps", eps, high=1.0 if norm == "linf" else math.inf)
    _count("max_pixels", max_pixels)
    res = _resolution(resolution, top, min(PIXEL, top / 16) if norm == "linf" else top / 64)
    return st.builds(Direction, st.just(direction), _magnitudes(top, res), st.integers(1, max_pixels),
                     st.just(norm), st.just(label))


def compositions(*strategies: st.SearchStrategy[Perturbation], max_steps: int = 3
                 ) -> st.SearchStrategy[Composition]:
    """Sequences of 1..max_steps perturbations drawn from ``strategies``, applied in order.

    Shrinks toward fewer steps and toward the first strategy given.
    """
    if not strategies:
        raise InvalidArgument("compositions: expected at least one strategy but got none")
    for s in strategies:
        if not isinstance(s, st.SearchStrategy):
            raise InvalidArgument(f"compositions: expected hypothesis strategies but got {type(s).__name__}")
    n = _count("max_steps", max_steps)
    return st.builds(Composition, st.lists(st.one_of(*strategies), min_size=1, max_size=n).map(tuple))


#: The strategies markers and :func:`robtest.fuzz.fuzz` can name.
STRATEGIES: dict[str, Callable[..., st.SearchStrategy[Perturbation]]] = {
    f.__name__: f for f in (offsets, gains, contrasts, linf_perturbations, l2_perturbations, gaussian_noises,
                            salt_and_pepper_noises, translations, rotations, blurs, occlusions, pixel_changes)
}


def get_strategy(name: str, **options: Any) -> st.SearchStrategy[Perturbation]:
    """The strategy ``name`` (a key of :data:`STRATEGIES`) built with ``options``; errors list what is accepted."""
    import inspect

    if name not in STRATEGIES:
        raise InvalidArgument(f"strategy: expected one of {', '.join(sorted(STRATEGIES))} but got {name!r}")
    fn = STRATEGIES[name]
    params = inspect.signature(fn).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise InvalidArgument(f"strategy {name}: does not take {', '.join(unknown)}; it accepts: "
                              f"{', '.join(params) or 'no options'}")
    missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in options]
    if missing:
        raise InvalidArgument(f"strategy {name}: expected {', '.join(missing)} (e.g. {missing[0]}=0.05) but got none")
    return fn(**options)
