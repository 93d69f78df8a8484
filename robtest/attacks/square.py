"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020): a score-based random search over square
windows, in L∞ and L2. It needs only forward passes, so masked or shattered gradients do not stop it."""

from __future__ import annotations

import math

import torch

from robtest.attacks import _driver
from robtest.attacks._driver import Bounds, per_sample_loss, run_attack
from robtest.attacks._norms import Norm
from robtest.attacks._registry import register_attack
from robtest.attacks.apgd import own_generator
from robtest.rng import RNG, SampleRNG
from robtest.validation import integer, number

__all__ = ["square"]

# Iterations (out of 10 000 queries) after which the paper halves the fraction p of the image a square covers;
# a different budget rescales them.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, i: int, queries: int) -> float:
    """The fraction of the image that the square of query ``i`` covers, out of ``queries``.

    >>> [p_schedule(0.8, i, 1000) for i in (1, 2, 6, 21, 100, 999)]
    [0.8, 0.4, 0.2, 0.1, 0.05, 0.0015625]
    """
    at = int(i / queries * 10000)
    return p_init / 2 ** sum(at > t for t in _HALVINGS)


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """x as (N, C, H, W): a vector is one row, three dimensions one channel, more are folded into the width."""
    n = x.shape[0]
    if x.dim() == 2:
        return x.reshape(n, 1, 1, -1)
    if x.dim() == 3:
        return x.reshape(n, 1, *x.shape[1:])
    return x.reshape(n, x.shape[1], x.shape[2], -1)


def _side(p: float, h: int, w: int) -> tuple[int, int]:
    s = max(int(round(math.sqrt(p * h * w))), 1)
    return min(s, max(h - 1, 1)), min(s, max(w - 1, 1))


def _windows(m: int, h: int, w: int, hh: int, hw: int, gen: RNG, device) -> tuple[torch.Tensor, ...]:
    """Random top-left corners of m windows hh×hw inside h×w, and their masks (m, 1, h, w)."""
    r = gen.randint(0, h - hh + 1, (m,), device=device)
    s = gen.randint(0, w - hw + 1, (m,), device=device)
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    in_r = (rows[None] >= r[:, None]) & (rows[None] < r[:, None] + hh)
    in_c = (cols[None] >= s[:, None]) & (cols[None] < s[:, None] + hw)
    return r, s, (in_r[:, :, None] & in_c[:, None, :])[:, None]


def _signs(shape: tuple[int, ...], gen: RNG, like: torch.Tensor) -> torch.Tensor:
    return gen.randint(0, 2, shape, device=like.device).to(like.dtype).mul_(2).sub_(1)


def _bump(a: int, b: int, dtype, device) -> torch.Tensor:
    """The paper's pseudo-Gaussian on an a×b rectangle: concentric rings, ring k from the outside adding
    1/(n+1−k)², so the centre is largest."""
    r = torch.arange(a, device=device, dtype=dtype)
    s = torch.arange(b, device=device, dtype=dtype)
    ring = torch.maximum((r - (a - 1) / 2).abs()[:, None], (s - (b - 1) / 2).abs()[None]).floor()
    n = (max(a, b) - 1) // 2  # = int(ring.max()), without reading it back from the device
    depth = n - ring  # 0 on the outer ring
    weights = 1.0 / torch.arange(n + 1, 0, -1, device=device, dtype=dtype) ** 2  # 1/(n+1)², ..., 1
    cum = weights.cumsum(0)
    return cum[depth.long()]


def _update_pattern(a: int, b: int, dtype, device) -> torch.Tensor:
    """Two bumps of opposite sign side by side along the longer side, unit L2 norm: the L2 update's shape."""
    if a == 1 and b == 1:
        return torch.ones(1, 1, dtype=dtype, device=device)
    if b >= a:
        left, right = _bump(a, (b + 1) // 2, dtype, device), _bump(a, b // 2, dtype, device)
        p = torch.cat([left, -right], dim=1)
    else:
        top, bottom = _bump((a + 1) // 2, b, dtype, device), _bump(a // 2, b, dtype, device)
        p = torch.cat([top, -bottom], dim=0)
    return p / p.norm()


def _place(pattern: torch.Tensor, r: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample patterns (m, a, b) written at corners (r, s) of zero images (m, 1, h, w)."""
    m, a, b = pattern.shape
    h, w = mask.shape[-2:]
    ri = (torch.arange(h, device=r.device)[None] - r[:, None]).clamp(0, a - 1)
    ci = (torch.arange(w, device=s.device)[None] - s[:, None]).clamp(0, b - 1)
    full = pattern[torch.arange(m, device=r.device)[:, None, None], ri[:, :, None], ci[:, None, :]]
    return full[:, None] * mask


def _linf_init(x, eps, lo, hi, gen):
    n, c, _, w = x.shape
    # Vertical stripes of width one, each ±ε per channel.
    return (x + eps * _signs((n, c, 1, w), gen, x)).clamp_(lo, hi)


def _linf_propose(x0, xa, eps, lo, hi, p, gen):
    m, c, h, w = x0.shape
    hh, hw = _side(p, h, w)
    _, _, mask = _windows(m, h, w, hh, hw, gen, x0.device)
    cand = torch.where(mask, (x0 + eps * _signs((m, c, 1, 1), gen, x0)).clamp_(lo, hi), xa)
    # A window that already holds the drawn colours would waste a query: draw those again (a few times), each
    # time from a stream of its own, so that a point's redraws do not depend on the others' (nor their count).
    # Off the CPU the check is skipped (it would sync the host each query): the redraws only replace windows
    # still the same, so drawing all 8 gives what stopping early gives.
    check = _driver.compact_every(x0.device) == 1
    for again in range(8):
        same = (cand == xa).flatten(1).all(dim=1)
        if check and not bool(same.any()):
            break
        redraw = torch.where(mask, (x0 + eps * _signs((m, c, 1, 1), gen.fork(again), x0)).clamp_(lo, hi), xa)
        cand = torch.where(same[:, None, None, None], redraw, cand)
    return cand


def _sq_norm(t: torch.Tensor) -> torch.Tensor:
    return t.pow(2).flatten(2).sum(dim=2)  # (m, c)


def _l2_init(x, eps, lo, hi, gen):
    n, c, h, w = x.shape
    # Tiles of about a fifth of the image, each holding one pseudo-Gaussian bump of random sign per channel.
    t = max(min(h, w) // 5, 1)
    delta = torch.zeros_like(x)
    for r0 in range(0, h, t):
        for s0 in range(0, w, t):
            a, b = min(t, h - r0), min(t, w - s0)
            bump = _bump(a, b, x.dtype, x.device)
            delta[:, :, r0:r0 + a, s0:s0 + b] = bump * _signs((n, c, 1, 1), gen, x)
    size = delta.flatten(1).norm(dim=1).clamp_min(torch.finfo(x.dtype).tiny).view(-1, 1, 1, 1)
    return (x + delta * (eps / size)).clamp_(lo, hi)


def _l2_propose(x0, xa, eps, lo, hi, p, gen, norm: Norm):
    m, c, h, w = x0.shape
    hh, hw = _side(p, h, w)
    r1, s1, m1 = _windows(m, h, w, hh, hw, gen, x0.device)
    _, _, m2 = _windows(m, h, w, hh, hw, gen, x0.device)
    nu = xa - x0
    tiny = torch.finfo(x0.dtype).tiny
    unused = (eps.flatten() ** 2 - nu.flatten(1).pow(2).sum(dim=1)).clamp_min(0)  # (m,)
    union = m1 | m2
    avail = (_sq_norm(nu * union) + unused[:, None] / c).sqrt()  # (m, c): what this channel may spend on W1
    pat = _update_pattern(hh, hw, x0.dtype, x0.device).expand(m, hh, hw)
    if hh == hw:  # a random orientation of the two bumps
        flip = gen.randint(0, 2, (m, 1, 1), device=x0.device).bool()
        pat = torch.where(flip, pat.transpose(1, 2), pat)
    eta = _place(pat, r1, s1, m1)  # (m, 1, h, w), unit norm on W1
    old = nu * m1
    old_size = _sq_norm(old).sqrt()[:, :, None, None]
    # The new square: a fresh bump of random sign per channel plus the direction W1 already had, rescaled to
    # carry the budget W1 ∪ W2 held (W2 gives its share up) and a 1/c share of what was unused.
    temp = _signs((m, c, 1, 1), gen, x0) * eta + old / old_size.clamp_min(tiny)
    temp = temp * m1
    temp = temp / _sq_norm(temp).sqrt()[:, :, None, None].clamp_min(tiny) * avail[:, :, None, None]
    new_nu = nu * ~union + temp
    return (x0 + norm.project(new_nu, eps)).clamp_(lo, hi)


def _square_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, queries, p_init, generator):
    """Returns (examples, fooled): a point's first fooling query, else its best one."""
    gen = own_generator(generator, x)
    shape = x.shape
    n = shape[0]
    x4 = _as_images(x)
    e4 = eps.reshape(n, 1, 1, 1)
    with torch.no_grad():
        xa = _linf_init(x4, e4, lo, hi, gen) if norm.name == "linf" else _l2_init(x4, e4, lo, hi, gen)
        logits = f(xa.reshape(shape))
        cur = per_sample_loss(logits, y, loss)
        active = logits.argmax(dim=1) == y
        out = xa.clone()
        fooled = ~active
        idx = active.nonzero().squeeze(1)
        x0, y0, e0, xa, cur = x4[idx], y[idx], e4[idx], xa[idx], cur[idx]
        every = _driver.compact_every(x.device)
        live = None  # between compactions (on an accelerator): the points still searching (None: all)
        for i in range(1, queries):
            if idx.numel() == 0:
                break
            p = p_schedule(p_init, i, queries)
            # Query i draws from its own stream for the points still searching: what a point draws at query i
            # does not depend on which others were fooled before.
            q = gen.fork(i).take(idx)
            if norm.name == "linf":
                cand = _linf_propose(x0, xa, e0, lo, hi, p, q)
            else:
                cand = _l2_propose(x0, xa, e0, lo, hi, p, q, norm)
            logits = f(cand.reshape(-1, *shape[1:]))
            lval = per_sample_loss(logits, y0, loss)
            better = lval > cur
            xa = torch.where(better[:, None, None, None], cand, xa)
            cur = torch.where(better, lval, cur)
            hit = logits.argmax(dim=1) != y0
            if every == 1:
                if bool(hit.any()):
                    # Fooled: recorded, and the point needs no more queries.
                    out[idx[hit]] = cand[hit]
                    fooled[idx[hit]] = True
                    keep = ~hit
                    idx, x0, y0, e0, xa, cur = idx[keep], x0[keep], y0[keep], e0[keep], xa[keep], cur[keep]
                continue
            # On an accelerator: recorded and frozen by masks, without a sync; dropped every `every` queries.
            hit = hit if live is None else hit & live
            out.index_copy_(0, idx, torch.where(hit[:, None, None, None], cand, out[idx]))
            fooled.index_copy_(0, idx, fooled[idx] | hit)
            live = ~hit if live is None else live & ~hit
            if i % every == 0:
                keep = live.nonzero().squeeze(1)  # the one host sync of these queries
                idx, x0, y0, e0, xa, cur = idx[keep], x0[keep], y0[keep], e0[keep], xa[keep], cur[keep]
                live = None
        if live is None:
            out[idx] = xa
        else:  # a frozen point keeps the query that fooled it
            out.index_copy_(0, idx, torch.where(live[:, None, None, None], xa, out[idx]))
    return out.reshape(shape), fooled


def _square_entry(f, x, y, **kw):
    return _square_core(f, x, y, **kw)[0]


@register_attack("square", title="Square")
def square(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    queries: int = 1000,
    p_init: float = 0.8,
    loss: str = "margin",
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """Square Attack, Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial attack via
    random search", ECCV 2020.

    A random search that uses only the model's outputs. L∞: it starts from vertical stripes of ±ε and at each
    query sets a random square window, per channel, to x ± ε; L2: it starts from tiles of pseudo-Gaussian bumps
    and moves the perturbation's mass from one random square into another as a pair of opposite bumps. A change
    is kept when it raises ``loss`` (the margin max_{j≠y} z_j − z_y by default). The square covers a fraction p
    of the image, from ``p_init`` halved on the paper's schedule (after 10, 50, 200, 500, 1000, 2000, 4000,
    6000 and 8000 of 10 000 queries, rescaled to ``queries``). A point stops at its first fooling query.
    ``queries`` counts forward passes per point, the initialisation included. Inputs (N, C, H, W) are images;
    (N, D) is taken as one row of pixels.

    Args:
        model: maps a batch (N, ...) in ``bounds`` to logits (N, C).
        x: inputs (N, ...) in ``bounds``; y: labels (N,).
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).
        generator: a seeded ``torch.Generator`` on x's device, the only source of randomness; None uses one
            seeded 0.

    Returns:
        Adversarial examples (N, ...) in the box and the ε-ball.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = square(model, x, y, eps=0.1, queries=50, generator=torch.Generator().manual_seed(0))
    >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
    True
    """
    integer("queries", queries)
    number("p_init", p_init, low=0, high=1, strict_low=True, expected="a fraction in (0, 1]")
    return run_attack(_square_entry, model, x, y, eps=eps, norm=norm, bounds=bounds, loss=loss, queries=queries,
                      p_init=float(p_init), generator=generator)
