"""Auto-PGD (Croce & Hein, ICML 2020): PGD whose step size needs no tuning, in L∞ and L2, untargeted and with the
targeted DLR loss over the most likely wrong classes."""

from __future__ import annotations

import math

import torch

from robtest.attacks import _driver
from robtest.attacks._driver import Bounds, CheckedModel, loss_grad, per_sample_loss, run_attack
from robtest.attacks._norms import Norm
from robtest.attacks._registry import register_attack
from robtest.rng import SampleRNG, TorchRNG, as_rng
from robtest.validation import integer, number

__all__ = ["apgd", "apgd_t"]

MOMENTUM = 0.75  # weight of the new step against the previous one (the paper's α)


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step: ⌈p_j·steps⌉ for p_0 = 0, p_1 = 0.22 and
    p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), below ``steps``.

    >>> checkpoints(100)
    [0, 22, 41, 57, 70, 80, 87, 93, 99]
    """
    ps = [0.0, 0.22]
    while ps[-1] < 1:
        ps.append(ps[-1] + max(ps[-1] - ps[-2] - 0.03, 0.06))
    out: list[int] = []
    for p in ps:
        w = math.ceil(round(p * steps, 9))
        if w < steps and (not out or w > out[-1]):
            out.append(w)
    return out


def own_generator(generator: torch.Generator | SampleRNG | TorchRNG | None, x: torch.Tensor) -> SampleRNG | TorchRNG:
    """The attack's source of randomness: ``generator`` (a per-sample :class:`~robtest.rng.SampleRNG` or a
    ``torch.Generator``), or a generator seeded 0 (never the global RNG)."""
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    return as_rng(generator)


def _fooled(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    pred = logits.argmax(dim=1)
    return pred == y if targeted else pred != y


def _run(f, x, y, eps, norm: Norm, lo, hi, loss, steps, rho, targeted, target, generator):
    """One APGD run from a random start. Returns (examples, fooled, loss of each example).

    A point is dropped from the batch at its first fooling iterate, which is what it returns; the others return
    their highest-loss iterate.
    """
    n = x.shape[0]
    marks = set(checkpoints(steps)[1:])
    out = x.clone()
    out_loss = torch.full((n,), float("-inf"), device=x.device, dtype=x.dtype)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    idx = torch.arange(n, device=x.device)
    x0, y0, e0, t0 = x, y, eps, target
    xa = (x0 + norm.random(x0, e0, generator)).clamp_(lo, hi)
    eta = 2 * e0.clone()
    x_prev = xa
    # Per point: best iterate and its gradient (a checkpoint restarts from there), loss of the last iterate,
    # how many steps raised the loss since the last checkpoint, and the state at that checkpoint.
    best = best_g = None
    best_loss = last_loss = None
    rises = torch.zeros(n, device=x.device)
    reduced_at_mark = torch.zeros(n, dtype=torch.bool, device=x.device)
    best_at_mark = None
    prev_mark = 0
    every = _driver.compact_every(x.device)
    live = None  # between compactions (on an accelerator): the points not fooled yet (None: all of them)
    for k in range(steps + 1):
        if k < steps:
            # Masking is judged on the gradients the attack goes on to use: a fooled point's is never used, and
            # for DLR it is legitimately zero where y is the third logit (the ratio is then identically 1).
            cut_off = getattr(f, "no_gradient", 0)
            logits, g = loss_grad(f, xa, y0, loss, targeted, check_masking=False, target=t0)
            observe = isinstance(f, CheckedModel) and f.no_gradient == cut_off  # no_gradient is reported apart
        else:  # the last iterate needs no gradient, only its loss and prediction
            with torch.no_grad():
                logits, g = f(xa), None
        keep = None
        with torch.no_grad():
            lval = per_sample_loss(logits, y0, loss, targeted, target=t0)
            hit = _fooled(logits, y0, targeted)
            if live is not None:
                hit = hit & live
            if g is not None and observe:
                f.observe(g, lval, ~hit if live is None else live & ~hit)  # counted on the device, no sync
        if every == 1:
            if bool(hit.any()):
                # First fooling iterate: recorded, and the point leaves the batch (later steps only pay for the
                # rest).
                out[idx[hit]] = xa[hit]
                out_loss[idx[hit]] = lval[hit]
                done[idx[hit]] = True
                keep = ~hit
        else:
            # On an accelerator: recorded and frozen by masks, without a sync; dropped every `every` steps.
            out.index_copy_(0, idx, torch.where(norm_mask(hit, xa), xa, out[idx]))
            out_loss.index_copy_(0, idx, torch.where(hit, lval, out_loss[idx]))
            done.index_copy_(0, idx, done[idx] | hit)
            live = ~hit if live is None else live & ~hit
            keep = live.nonzero().squeeze(1) if (k + 1) % every == 0 and k < steps else None
            if keep is not None:
                live = None
        if keep is not None:
            idx, x0, y0, e0, xa, x_prev, lval, eta = (idx[keep], x0[keep], y0[keep], e0[keep], xa[keep],
                                                      x_prev[keep], lval[keep], eta[keep])
            t0 = t0[keep] if t0 is not None else None
            g = g[keep] if g is not None else None
            rises, reduced_at_mark = rises[keep], reduced_at_mark[keep]
            if best is not None:
                best, best_g, best_loss, last_loss = best[keep], best_g[keep], best_loss[keep], last_loss[keep]
                best_at_mark = best_at_mark[keep]
            keep = None
            if idx.numel() == 0:
                break
        if best is None:
            best, best_loss, last_loss = xa.clone(), lval.clone(), lval.clone()
            best_g = g.clone()
            best_at_mark = lval.clone()
        else:
            rises += (lval > last_loss).to(rises.dtype)
            last_loss = lval
            better = lval > best_loss
            best, best_loss = torch.where(norm_mask(better, xa), xa, best), torch.where(better, lval, best_loss)
            if g is not None:
                best_g = torch.where(norm_mask(better, g), g, best_g)
        if k == steps:
            break
        if k in marks:
            # Halve the step where fewer than rho of the steps since the last checkpoint raised the loss, or
            # where neither the step nor the best loss changed over the last interval; restart those from their
            # best point.
            slow = rises < rho * (k - prev_mark)
            stuck = ~reduced_at_mark & (best_loss == best_at_mark)
            cut = slow | stuck
            eta = torch.where(norm_mask(cut, eta), eta / 2, eta)
            xa = torch.where(norm_mask(cut, xa), best, xa)
            x_prev = torch.where(norm_mask(cut, xa), best, x_prev)
            g = torch.where(norm_mask(cut, xa), best_g, g)
            reduced_at_mark, best_at_mark = cut, best_loss.clone()
            rises.zero_()
            prev_mark = k
        with torch.no_grad():
            z = norm.step_(xa, g, x0, eta, e0, lo, hi)  # g is given up here
            if k == 0:
                nxt = z
            else:
                d = xa + MOMENTUM * (z - xa) + (1 - MOMENTUM) * (xa - x_prev) - x0
                nxt = (x0 + norm.project(d, e0)).clamp_(lo, hi)
        x_prev, xa = xa, nxt
    if idx.numel():
        if live is None:
            out[idx], out_loss[idx] = best, best_loss
        else:  # a frozen point keeps the iterate that fooled it
            out.index_copy_(0, idx, torch.where(norm_mask(live, best), best, out[idx]))
            out_loss.index_copy_(0, idx, torch.where(live, best_loss, out_loss[idx]))
    return out, done, out_loss


def norm_mask(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return m.view(-1, *([1] * (like.dim() - 1)))


def _apgd_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, steps, restarts, targeted, rho, generator,
               target=None):
    """APGD with restarts: every point keeps its first fooling example, else its highest-loss one. Returns
    (examples, fooled) so that an ensemble needs no extra forward pass."""
    n = x.shape[0]
    generator = own_generator(generator, x)
    out = x.clone()
    out_loss = torch.full((n,), float("-inf"), device=x.device, dtype=x.dtype)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    for restart in range(restarts):
        idx = (~done).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        t = target[idx] if target is not None else None
        xa, hit, lval = _run(f, x[idx], y[idx], eps[idx], norm, lo, hi, loss, steps, rho, targeted, t,
                             generator.fork(restart).take(idx))
        better = hit | (lval > out_loss[idx])
        out[idx[better]], out_loss[idx[better]] = xa[better], lval[better]
        done[idx[hit]] = True
    return out, done


def _apgd_entry(f, x, y, **kw):
    return _apgd_core(f, x, y, **kw)[0]


def wrong_classes(f, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` most likely wrong classes at ``x``, most likely first: (N, k)."""
    with torch.no_grad():
        logits = f(x)
    k = min(k, logits.shape[1] - 1)
    return logits.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices


def _apgd_t_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, steps, restarts, targets, rho, generator):
    """APGD-T: for each of the ``targets`` most likely wrong classes in turn, APGD with the targeted DLR loss on
    the points no earlier target fooled (success is any misclassification). Returns (examples, fooled)."""
    n = x.shape[0]
    out = x.clone()
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    if n == 0:
        return out, done
    generator = own_generator(generator, x)
    ranked = wrong_classes(f, x, y, targets)
    for j in range(ranked.shape[1]):
        idx = (~done).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa, hit = _apgd_core(f, x[idx], y[idx], eps=eps[idx], norm=norm, lo=lo, hi=hi, loss="dlr", steps=steps,
                             restarts=restarts, targeted=False, rho=rho, generator=generator.fork(1000 + j).take(idx),
                             target=ranked[idx, j])
        out[idx[hit]] = xa[hit]
        if j == 0:
            out[idx[~hit]] = xa[~hit]
        done[idx[hit]] = True
    return out, done


def _apgd_t_entry(f, x, y, **kw):
    return _apgd_t_core(f, x, y, **kw)[0]


def _check(steps, restarts, rho) -> None:
    integer("steps", steps)
    integer("restarts", restarts)
    number("rho", rho, low=0, high=1, strict_low=True)


@register_attack("apgd", title="APGD")
def apgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    steps: int = 100,
    loss: str = "ce",
    restarts: int = 1,
    targeted: bool = False,
    rho: float = 0.75,
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """Auto-PGD, Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020.

    PGD with momentum 0.75 and a step size that starts at 2ε and halves at checkpoints (at 0, 22, 41, 57...
    percent of ``steps``) where fewer than ``rho`` of the steps since the last checkpoint raised the loss, or
    where neither the step size nor the best loss changed; a halving restarts from the best point so far. Each
    run starts at a uniform random point of the ball. Every point returns its first fooling iterate (and stops
    being attacked), else its highest-loss iterate over all ``restarts``. ``loss`` is ``"ce"``, ``"margin"``
    or ``"dlr"`` (Difference of Logits Ratio −(z_y − max_{j≠y} z_j)/(z_π1 − z_π3), invariant to the scale of
    the logits; needs 3 classes or more). ``targeted=True`` treats ``y`` as target classes.

    Args:
        model: maps a batch (N, ...) in ``bounds`` to logits (N, C).
        x: inputs (N, ...) in ``bounds``; y: labels (N,), or target classes when ``targeted``.
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).
        generator: a seeded ``torch.Generator`` on x's device for the random starts (reproducibility); None
            uses one seeded 0 (the global RNG is never drawn from).

    Returns:
        Adversarial examples (N, ...) in the box and the ε-ball.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = apgd(model, x, y, eps=0.1, steps=10, loss="dlr", generator=torch.Generator().manual_seed(0))
    >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
    True
    """
    _check(steps, restarts, rho)
    return run_attack(_apgd_entry, model, x, y, eps=eps, norm=norm, bounds=bounds, loss=loss, steps=steps,
                      restarts=restarts, targeted=bool(targeted), rho=float(rho), generator=generator)


@register_attack("apgd_t", title="APGD-T")
def apgd_t(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    steps: int = 100,
    targets: int = 3,
    restarts: int = 1,
    rho: float = 0.75,
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """Targeted Auto-PGD with the targeted DLR loss, Croce & Hein, ICML 2020.

    For each of the ``targets`` most likely wrong classes at ``x`` in turn (AutoAttack's standard uses 9),
    runs :func:`apgd` with the loss −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2) on the points that no earlier target
    fooled. Success is any misclassification, not reaching the target. Needs 4 classes or more.

    Args:
        model: maps a batch (N, ...) in ``bounds`` to logits (N, C).
        x: inputs (N, ...) in ``bounds``; y: true labels (N,).
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).
        generator: a seeded ``torch.Generator`` on x's device for the random starts (reproducibility); None
            uses one seeded 0 (the global RNG is never drawn from).

    Returns:
        Adversarial examples (N, ...) in the box and the ε-ball.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 5))
    >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 3, 4])
    >>> x_adv = apgd_t(model, x, y, eps=0.1, steps=10, targets=2, generator=torch.Generator().manual_seed(0))
    >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
    True
    """
    _check(steps, restarts, rho)
    integer("targets", targets)
    return run_attack(_apgd_t_entry, model, x, y, eps=eps, norm=norm, bounds=bounds, loss="dlr", steps=steps,
                      restarts=restarts, targets=targets, rho=float(rho), generator=generator)
