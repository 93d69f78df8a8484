"""An AutoAttack-style ensemble (Croce & Hein, ICML 2020): APGD-CE, then APGD-T, then Square, each on the points
the attacks before it left robust, so that a point counts as robust only if none of them fooled it."""

from __future__ import annotations

import torch

from robtest.attacks._driver import Bounds, run_attack
from robtest.attacks._norms import Norm
from robtest.attacks._registry import register_attack
from robtest.attacks.apgd import _apgd_core, _apgd_t_core, own_generator
from robtest.attacks.square import _square_core
from robtest.diagnostics import report
from robtest.rng import SampleRNG
from robtest.validation import integer

__all__ = ["auto"]


def _auto_core(f, x, y, *, eps, norm: Norm, lo, hi, loss, steps, restarts, targets, queries, generator):
    gen = own_generator(generator, x)
    out = x.clone()
    robust = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    if x.shape[0] == 0:
        return out
    with torch.no_grad():
        classes = f(x[:1]).shape[1]
    common = dict(norm=norm, lo=lo, hi=hi, steps=steps, restarts=restarts, rho=0.75, generator=gen)

    def phase(run) -> int:
        idx = robust.nonzero().squeeze(1)
        if idx.numel() == 0:
            return 0
        xa, hit = run(idx)
        out[idx] = xa  # fooled points keep this example; the robust ones keep the latest attack's
        robust[idx[hit]] = False
        return int(hit.sum())

    # Cheapest first: APGD with the cross-entropy.
    # Each phase draws from its own stream, for the points it attacks (``common`` holds the ensemble's stream).
    common.pop("generator")
    phase(lambda i: _apgd_core(f, x[i], y[i], eps=eps[i], loss="ce", targeted=False, generator=gen.fork(1).take(i),
                               **common))
    # Then the scale-invariant DLR loss: targeted over the most likely wrong classes when there are four
    # classes or more (the targeted DLR needs them), else untargeted DLR (3 classes) or the margin (2).
    if classes >= 4:
        phase(lambda i: _apgd_t_core(f, x[i], y[i], eps=eps[i], loss="dlr", targets=targets,
                                     generator=gen.fork(2).take(i), **common))
    else:
        second = "dlr" if classes == 3 else "margin"
        phase(lambda i: _apgd_core(f, x[i], y[i], eps=eps[i], loss=second, targeted=False,
                                   generator=gen.fork(2).take(i), **common))
    # Last the gradient-free search: whatever it fools, the gradients above missed.
    m = int(robust.sum())
    if queries and m:
        k = phase(lambda i: _square_core(f, x[i], y[i], eps=eps[i], norm=norm, lo=lo, hi=hi, loss="margin",
                                         queries=queries, p_init=0.8, generator=gen.fork(3).take(i)))
        if k:  # counted over the evaluation; kept only when the sum is more than noise (indicators.settle)
            report("gradient_free_wins", f"Square fooled {k} of {m} points the gradient attacks left robust",
                   warn=False, fooled=k, of=m)
    return out


@register_attack("auto", title="AutoAttack-style")
def auto(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    steps: int = 50,
    restarts: int = 1,
    targets: int = 9,
    queries: int = 500,
    bounds: Bounds = (0.0, 1.0),
    generator: torch.Generator | SampleRNG | None = None,
) -> torch.Tensor:
    """An AutoAttack-style ensemble after Croce & Hein, ICML 2020: APGD-CE, APGD-T and Square.

    In order of cost, each on the points still correctly classified: :func:`~robtest.attacks.apgd` with the
    cross-entropy (``steps``, ``restarts``); :func:`~robtest.attacks.apgd_t` with the targeted DLR loss over the
    ``targets`` most likely wrong classes (untargeted DLR for 3 classes, the margin for 2); then
    :func:`~robtest.attacks.square` with ``queries`` forward passes (``queries=0`` skips it). Every point returns
    the first fooling example found, else the last attack's example. When Square fools points both gradient
    attacks left robust, it reports them to the ``gradient_free_wins`` indicator, which fires when their count over
    the evaluation is more than noise (:func:`robtest.stats.exceeds_noise`): the gradients mislead. The points
    Square fooled count as fooled either way.

    AutoAttack's standard version uses 100 steps, 9 targets and 5000 queries. robtest's defaults (50 steps,
    9 targets, 500 queries) were measured against the exact robust accuracy of a small ReLU network (MILP, see
    BENCHMARKS.md): more targets found the last points where more steps or queries did not, and 50 steps over
    9 targets cost about what 100 steps over 3 do; Square, the costliest phase per point, is there to catch
    masked gradients, which needs far fewer queries than a black-box evaluation.

    Args:
        model: maps a batch (N, ...) in ``bounds`` to logits (N, C).
        x: inputs (N, ...) in ``bounds``; y: labels (N,).
        eps: radius in pixel units of the box, a number or a per-sample tensor (N,).
        generator: a seeded ``torch.Generator`` on x's device, the only source of randomness; None uses one
            seeded 0.

    Returns:
        Adversarial examples (N, ...) in the box and the ε-ball.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    >>> x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 3, 0])
    >>> x_adv = auto(model, x, y, eps=0.1, steps=10, queries=20, generator=torch.Generator().manual_seed(0))
    >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
    True
    """
    integer("steps", steps)
    integer("restarts", restarts)
    integer("targets", targets)
    integer("queries", queries, low=0)
    return run_attack(_auto_core, model, x, y, eps=eps, norm=norm, bounds=bounds, steps=steps, restarts=restarts,
                      targets=targets, queries=queries, generator=generator)

