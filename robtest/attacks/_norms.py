"""The norm picks small helpers: steepest-ascent direction, projection, random start, size.

Attacks take ``norm="linf"`` or ``norm="l2"`` and look the helpers up here instead of subclassing per norm.
``eps`` may be a float or a per-sample tensor already shaped to broadcast against the batch (N, 1, ..., 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from robtest.errors import InvalidArgument
from robtest.rng import RNG, as_rng


def _tiny(t: torch.Tensor) -> float:
    return torch.finfo(t.dtype).tiny


def _unit_(g: torch.Tensor) -> torch.Tensor:
    """``g / ‖g‖₂`` per sample, in place; zero rows stay zero. A tiny but non-zero gradient (logits scaled by
    1e-15) still gives a unit direction: rows are first scaled by their largest entry, so the sum of squares
    neither underflows (which would divide by ~0) nor is floored (a fixed floor such as 1e-12 shrinks the
    step to nothing and stalls L2 attacks)."""
    peak = _view_col(g.flatten(1).abs().amax(dim=1).clamp_min_(_tiny(g)), g)
    g.div_(peak)
    return g.div_(_view_col(_flat_norm(g).clamp_min_(_tiny(g)), g))


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(p=2, dim=1)


def _view_col(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def _linf_direction(g: torch.Tensor) -> torch.Tensor:
    return g.sign()


def _l2_direction(g: torch.Tensor) -> torch.Tensor:
    return _unit_(g.clone())


def _linf_project(delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(delta, eps), -eps)


def _l2_project(delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    n = _view_col(_flat_norm(delta), delta)
    return delta * torch.clamp(eps / n.clamp_min(_tiny(n)), max=1.0)


def _linf_random(like: torch.Tensor, eps: torch.Tensor, generator: torch.Generator | RNG | None) -> torch.Tensor:
    u = as_rng(generator).rand(like.shape, device=like.device, dtype=like.dtype)
    return (2 * u - 1) * eps


def _l2_random(like: torch.Tensor, eps: torch.Tensor, generator: torch.Generator | RNG | None) -> torch.Tensor:
    # Uniform in the ball: Gaussian direction, radius eps * U^(1/d).
    rng = as_rng(generator)
    g = rng.randn(like.shape, device=like.device, dtype=like.dtype)
    d = like[0].numel()
    u = rng.rand((like.shape[0],), device=like.device, dtype=like.dtype)
    r = _view_col(u.pow(1.0 / d), like) * eps
    return _l2_direction(g) * r


def _writable(g: torch.Tensor) -> torch.Tensor:
    # A gradient can come back as an expanded view (e.g. of a sum): writing to it in place is an error.
    if g.is_contiguous():
        return g
    return g.clone() if any(st == 0 and k > 1 for st, k in zip(g.stride(), g.shape, strict=True)) else g


def _linf_step_(xa: torch.Tensor, g: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, eps: torch.Tensor,
                lo: float, hi: float) -> torch.Tensor:
    # The same operations, in the same order, as x0 + project(xa + alpha·direction(g) − x0, eps) clipped to the
    # box, written in place into ``g`` (which the caller gives up): bit-identical, without five temporaries.
    d = _writable(g).sign_().mul_(alpha).add_(xa).sub_(x0)
    # clamp(d, −ε, ε) = max(min(d, ε), −ε) exactly, as ε ≥ 0: one op instead of two
    return d.clamp_(min=-eps, max=eps).add_(x0).clamp_(lo, hi)


def _l2_step_(xa: torch.Tensor, g: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, eps: torch.Tensor,
              lo: float, hi: float) -> torch.Tensor:
    g = _writable(g)
    d = _unit_(g).mul_(alpha).add_(xa).sub_(x0)
    n = _view_col(_flat_norm(d), d)
    return d.mul_(torch.clamp(eps / n.clamp_min_(_tiny(n)), max=1.0)).add_(x0).clamp_(lo, hi)


def _linf_size(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).abs().amax(dim=1)


@dataclass(frozen=True)
class Norm:
    name: str
    symbol: str
    direction: Callable[[torch.Tensor], torch.Tensor]
    project: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    random: Callable[[torch.Tensor, torch.Tensor, torch.Generator | RNG | None], torch.Tensor]
    size: Callable[[torch.Tensor], torch.Tensor]
    #: one in-place PGD step ``clip(x0 + project(xa + α·direction(g) − x0, ε))``, overwriting ``g``
    step_: Callable[..., torch.Tensor]


NORMS: dict[str, Norm] = {
    "linf": Norm("linf", "L∞", _linf_direction, _linf_project, _linf_random, _linf_size, _linf_step_),
    "l2": Norm("l2", "L2", _l2_direction, _l2_project, _l2_random, _flat_norm, _l2_step_),
}
_ALIASES = {"inf": "linf", "Linf": "linf", "L∞": "linf", "l_inf": "linf", "L2": "l2", "2": "l2"}


def get_norm(norm: str | float) -> Norm:
    """Return the helpers for ``norm`` ("linf" or "l2"; also accepts float('inf') and 2)."""
    if norm == float("inf"):
        norm = "linf"
    key = _ALIASES.get(str(norm), str(norm).lower())
    if key in ("2.0",):
        key = "l2"
    if key not in NORMS:
        raise InvalidArgument(f"norm: expected one of {sorted(NORMS)} but got {norm!r}")
    return NORMS[key]


def per_sample(eps: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """ε as a tensor shaped (N, 1, ..., 1) on ``like``'s device and dtype."""
    e = torch.as_tensor(eps, dtype=like.dtype, device=like.device)
    if e.dim() == 0:
        e = e.expand(like.shape[0])
    return _view_col(e, like)
