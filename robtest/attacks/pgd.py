"""Projected gradient descent (Madry et al. 2018) in L∞ and L2, with random start and restarts."""

from __future__ import annotations

import torch

from robtest.attacks import _driver
from robtest.attacks._driver import Bounds, loss_grad, per_sample_loss, run_attack
from robtest.attacks._norms import Norm, per_sample
from robtest.attacks._registry import register_attack
from robtest.rng import SampleRNG, as_rng
from robtest.validation import integer, number

__all__ = ["pgd"]


def _fooled(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    pred = logits.argmax(dim=1)
    return pred == y if targeted else pred != y


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _pgd_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, steps, step_size, random_start, restarts, targeted,
              early_stop, generator):
    n = x.shape[0]
    alpha = 2.5 * eps / steps if step_size is None else per_sample(step_size, x)
    alpha = alpha.expand_as(eps) if alpha.shape != eps.shape else alpha
    keep_final = restarts > 1
    # One fixed-budget run needs no bookkeeping: it returns its last iterate, like a bare loop would.
    best = x.clone() if early_stop or keep_final else None
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    best_loss = torch.full((n,), float("-inf"), device=x.device, dtype=x.dtype)
    rng = as_rng(generator)
    every = _driver.compact_every(x.device)
    for restart in range(restarts):
        if early_stop:
            idx = (~done).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            x0, y0, e0, a0 = x[idx], y[idx], eps[idx], alpha[idx]
        else:
            # Every point, every restart: no gathered copies (x0 is only read, never written).
            idx = torch.arange(n, device=x.device)
            x0, y0, e0, a0 = x, y, eps, alpha
        # Each restart draws its start from its own stream, for the points it attacks: a point's start depends
        # on its sample id and the restart only, never on which other points are still being attacked.
        start = rng.fork(restart).take(idx) if random_start else None
        xa = (x0 + norm.random(x0, e0, start)).clamp_(lo, hi) if random_start else x0.clone()
        live = None  # between compactions: the points of the batch not fooled yet (None: all of them)
        for step in range(steps):
            logits, g = loss_grad(f, xa, y0, loss, targeted, live=live)
            if early_stop:
                # Points already fooled are recorded and dropped: later steps only pay for the rest.
                hit = _fooled(logits, y0, targeted)
                if every == 1:
                    if bool(hit.any()):
                        best[idx[hit]] = xa[hit]
                        done[idx[hit]] = True
                        keep = ~hit
                        idx, x0, y0, e0, a0, xa, g = (idx[keep], x0[keep], y0[keep], e0[keep], a0[keep], xa[keep],
                                                      g[keep])
                        if idx.numel() == 0:
                            break
                else:
                    # Recorded and frozen on the device, without a sync; dropped at the next compaction.
                    hit = hit if live is None else hit & live
                    best.index_copy_(0, idx, torch.where(_rows(hit, xa), xa, best[idx]))
                    done.index_copy_(0, idx, done[idx] | hit)
                    live = ~hit if live is None else live & ~hit
                    if (step + 1) % every == 0 and step + 1 < steps:
                        keep = live.nonzero().squeeze(1)  # the one host sync of these steps
                        idx, x0, y0, e0, a0, xa, g = (idx[keep], x0[keep], y0[keep], e0[keep], a0[keep], xa[keep],
                                                      g[keep])
                        live = None
                        if idx.numel() == 0:
                            break
            xa = norm.step_(xa, g, x0, a0, e0, lo, hi)
        if idx.numel() == 0:
            continue
        if not keep_final:
            if best is None:
                return xa
            if live is None:
                best[idx] = xa
            else:  # a frozen point keeps the example that fooled it
                best.index_copy_(0, idx, torch.where(_rows(live, xa), xa, best[idx]))
            continue
        # Restarts keep the worst case per sample: fooled beats not fooled, then the higher loss.
        with torch.no_grad():
            logits = f(xa)
            hit = _fooled(logits, y0, targeted)
            lval = per_sample_loss(logits, y0, loss, targeted)
        better = hit | (lval > best_loss[idx])
        if live is not None:  # frozen points were fooled earlier and keep that example
            better, hit = better & live, hit & live
        best[idx[better]] = xa[better]
        best_loss[idx[better]] = lval[better]
        done[idx[hit]] = True
    return best


@register_attack("pgd", title="PGD")
def pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    restarts: int = 1,
    loss: str = "ce",
    targeted: bool = False,
    early_stop: bool = True,
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """Projected gradient descent, Madry et al., ICLR 2018.

    Each step moves ``step_size`` along the steepest-ascent direction of the loss for the norm (sign of the
    gradient for L∞, the normalised gradient for L2), then projects back to the ε-ball around ``x`` and the
    box. ``step_size`` defaults to ``2.5·ε/steps``. ``random_start`` begins at a uniform point of the ball.
    With ``restarts > 1`` every sample keeps its worst case over the restarts (a fooling example first, then
    the highest loss). With ``early_stop`` (default) a point stops being attacked as soon as it is fooled,
    which changes no verdict and saves the steps; pass ``early_stop=False`` for maximum-loss examples (e.g.
    adversarial training). ``loss="margin"`` ascends max_{j≠y} z_j − z_y instead of the cross-entropy.

    Args:
        model: maps a batch (N, ...) in ``bounds`` to logits (N, C).
        x: inputs (N, ...) in ``bounds``; y: labels (N,), or target classes when ``targeted``.
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).
        generator: a seeded ``torch.Generator`` on x's device for the random start (reproducibility), or a
            :class:`robtest.rng.SampleRNG` over the samples' ids (each start then depends on its sample only).

    Returns:
        Adversarial examples (N, ...) in the box and the ε-ball.

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible weights and data
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = pgd(model, x, y, eps=0.1, steps=5, generator=torch.Generator().manual_seed(0))
    >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
    True
    """
    integer("steps", steps)
    integer("restarts", restarts)
    number("step_size", step_size, low=0, strict_low=True, expected="a number > 0 (pixel units) or None",
           optional=True)
    return run_attack(
        _pgd_core, model, x, y, eps=eps, norm=norm, bounds=bounds, loss=loss, steps=steps, step_size=step_size,
        random_start=bool(random_start), restarts=restarts, targeted=bool(targeted), early_stop=bool(early_stop),
        generator=generator,
    )
