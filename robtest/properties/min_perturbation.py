"""Empirical robustness: the smallest perturbation that flips each prediction (Zantedeschi et al. 2017, Z3).

For every point the model gets right, the smallest ε at which ``attack`` fools it is found by bisection on ε
(per sample, all samples of a batch at once), and ``ρ = mean ‖δ_min‖/‖x‖`` in the attack's norm is reported
with a seeded bootstrap interval. Points the attack cannot fool even at ``eps_max`` count with ``eps_max``
(a lower bound: ``details["censored"]`` says how many), so ρ errs on the low side, the safe side for a floor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from robtest.attacks import get_attack
from robtest.attacks._driver import check_bounds, predict
from robtest.attacks._norms import get_norm
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.properties._common import flat_norm, map_samples
from robtest.rng import SampleRNG
from robtest.stats import bootstrap_ci
from robtest.validation import number, positive_int

__all__ = ["minimal_perturbation"]


def minimal_perturbation(
    model: torch.nn.Module,
    data: object,
    *,
    attack: str = "fgsm",
    norm: str = "linf",
    eps_max: float | None = None,
    bisections: int = 12,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    samples: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    confidence: float = 0.95,
    **options: Any,
) -> Measurement:
    """Empirical robustness ρ = mean ‖δ_min‖/‖x‖ over the initially-correct points, by ``bisections`` halvings of ε.

    ``options`` go to the attack (``steps``, ``step_size``, ``restarts``... for PGD).

    ``eps_max`` defaults to 0.4 of the box width for L∞ (and that times √d for L2). ``details["eps_min"]``
    lists the per-sample minimal ε (``eps_max`` where the attack never won), ``details["eps_median"]`` their
    median.

    For a linear two-class model with margin ``w·x + b`` the minimal L∞ perturbation is ``|w·x + b|/‖w‖₁``
    only while no coordinate reaches the box: at radius ε the worst case moves coordinate i by
    ``min(ε, r_i)`` against ``sign(w_i)``, where ``r_i`` is its room to the edge it is pushed to, so the exact
    minimum in the box is the root of ``Σ |w_i| min(ε, r_i) = |w·x + b|``: larger than the formula when
    clipping binds, and infinite when even the box's corner keeps the sign (robtest then reports ``eps_max``,
    censored). FGSM is that worst case, so the bisection finds the box-constrained minimum. Here the box does
    not bind:

    >>> import torch
    >>> lin = torch.nn.Linear(3, 2)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[1., -2., 0.5], [0., 0., 0.]])); _ = lin.bias.zero_()
    >>> x = torch.tensor([[0.9, 0.1, 0.5]])
    >>> m = minimal_perturbation(lin, (x, torch.tensor([0])), bisections=20, device="cpu")
    >>> round(m.details["eps_min"][0], 4), round(0.95 / 3.5, 4)    # (0.9 - 0.2 + 0.25) / (1 + 2 + 0.5)
    (0.2714, 0.2714)
    """
    spec = get_attack(attack)
    spec.check_options({**options, "norm": norm})
    nrm = get_norm(norm)
    bisections = positive_int("bisections", bisections)
    lo, hi = check_bounds(bounds)
    dev = resolve_device(device)
    p = math.inf if nrm.name == "linf" else 2.0
    if eps_max is not None:
        eps_max = number("eps_max", eps_max, low=0, strict_low=True)

    def bisect(x: torch.Tensor, y: torch.Tensor, rng: SampleRNG) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        top = eps_max if eps_max is not None else 0.4 * (hi - lo) * (1.0 if p == math.inf else
                                                                     math.sqrt(x[0].numel()))
        ok = predict(model, x).argmax(1) == y
        kept = ok.nonzero().squeeze(1)
        x, y = x[kept], y[kept]
        gen = rng.take(kept)  # every attack call draws the next numbers of each point's own stream
        n = y.shape[0]
        if not n:
            empty = torch.zeros(0, dtype=torch.float64, device=x.device)
            return ok, {"rho": empty, "eps": empty, "win": torch.zeros(0, dtype=torch.bool, device=x.device)}

        def fooled(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            xa = spec.fn(model, x, y, eps=e, norm=norm, bounds=(lo, hi), generator=gen, **options)
            return predict(model, xa).argmax(1) != y, xa

        a = torch.zeros(n, device=dev)
        b = torch.full((n,), top, device=dev)
        win, best = fooled(b)
        for _ in range(bisections):
            mid = (a + b) / 2
            hit, xa = fooled(mid)
            # Only samples the attack beats at eps_max are bisected; the rest keep eps_max.
            hit = hit & win
            a = torch.where(hit | ~win, a, mid)
            b = torch.where(hit, mid, b)
            best[hit] = xa[hit]
        xn = flat_norm(x, p).clamp_min(1e-12)
        size = torch.where(win, flat_norm(best - x, p), b)
        return ok, {"rho": (size / xn).double(), "eps": b.double(), "win": win}

    with on_device(model, dev), eval_mode(model):
        rows = map_samples(model, data, bisect, batch_size=batch_size, samples=samples, seed=seed, bounds=bounds,
                           device=dev, where="minimal_perturbation")
    censored = int((~rows["win"]).sum()) if "win" in rows else 0
    r = rows["rho"].numpy() if "rho" in rows else np.zeros(0)
    e = rows["eps"].numpy() if "eps" in rows else np.zeros(0)
    if r.size == 0:
        return Measurement("empirical robustness", float("nan"), float("nan"), float("nan"), n=0,
                           confidence=confidence, context="(no point was classified correctly)")
    low, high = bootstrap_ci(r, np.mean, confidence=confidence, seed=seed)
    return Measurement(
        "empirical robustness", float(r.mean()), low, high, n=int(r.size), confidence=confidence,
        context=f"ρ = mean ‖δ_min‖/‖x‖ under {spec.title} {nrm.symbol}",
        details={"eps_min": e.tolist(), "eps_median": float(np.median(e)), "censored": censored,
                 "attack": attack, "norm": nrm.name},
    )
