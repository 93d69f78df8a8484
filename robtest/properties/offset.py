"""The zero-order DC-offset attack (Galloway et al. 2018, W1): add one constant to every pixel, then clip.

It needs no gradient, so gradient masking cannot hide from it. The search is one-dimensional: every sample's
correctness is evaluated on a grid of offsets, each change of correctness between two grid points is located
by bisection, and the accuracy — a step function of the offset — is minimised exactly over the resulting
breakpoints (exact when a prediction changes at most once between neighbouring grid points). The worst offset
is then evaluated again in a separate forward pass, and that accuracy is the one reported.
"""

from __future__ import annotations

import torch

from robtest.attacks._driver import check_bounds
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.properties._common import map_samples
from robtest.stats import clopper_pearson, proportion_ci
from robtest.validation import number, pair, positive_int

__all__ = ["offset_accuracy", "offset_drop"]


@torch.no_grad()
def _correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor | float,
             lo: float, hi: float) -> torch.Tensor:
    if isinstance(c, torch.Tensor):
        c = c.view(-1, *([1] * (x.dim() - 1)))
    return model((x + c).clamp(lo, hi)).argmax(dim=1) == y


def offset_accuracy(model: torch.nn.Module, data: object, offset: float, *, bounds: tuple[float, float] = (0.0, 1.0),
                    batch_size: int = 256, samples: int | None = None, seed: int = 0,
                    device: str | torch.device = "auto", confidence: float = 0.95) -> Measurement:
    """Accuracy after adding ``offset`` to every pixel and clipping to ``bounds`` (Wilson interval).

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible weights and data
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> data = (torch.rand(20, 1, 2, 2), torch.randint(0, 2, (20,)))
    >>> offset_accuracy(model, data, 1.0, device="cpu").n    # every image is white: one prediction for all
    20
    """
    lo, hi = check_bounds(bounds)
    dev = resolve_device(device)
    with on_device(model, dev), eval_mode(model):
        rows = map_samples(model, data, lambda x, y, rng: (None, {"ok": _correct(model, x, y, float(offset), lo, hi)}),
                           batch_size=batch_size, samples=samples, seed=seed, bounds=bounds, device=dev,
                           where="offset_accuracy")
    ok, seen = int(rows["ok"].sum()), int(rows["ok"].numel())
    low, high = proportion_ci(ok, seen, confidence=confidence)
    return Measurement("accuracy", ok / seen, low, high, n=seen, confidence=confidence,
                       context=f"under offset {offset:+g}", details={"correct": ok, "offset": float(offset)})


def offset_drop(
    model: torch.nn.Module,
    data: object,
    *,
    offsets: tuple[float, float] = (-0.5, 0.5),
    grid: int = 21,
    tol: float = 1e-3,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    samples: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    confidence: float = 0.95,
) -> Measurement:
    """The largest drop from clean accuracy over constant offsets in ``offsets`` (pixel units, then clipped).

    The value is ``clean accuracy − accuracy at the worst offset``, both on the same samples. Its interval is
    ``[lo_b − hi_c, hi_b − lo_c]`` from exact intervals (each at ``α/2``) for the fractions ``b`` of samples the
    offset breaks and ``c`` it mends: valid for paired outcomes. The worst offset is chosen on the same samples,
    so the drop is, if anything, overstated (the safe side for a ceiling). ``details`` holds the worst offset,
    the clean and worst accuracies and the grid's accuracies.

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible data
    >>> class Centered(torch.nn.Module):   # subtracts each image's mean: blind to brightness
    ...     def forward(self, x):
    ...         x = x.flatten(1)
    ...         return torch.stack([x[:, :2].sum(1) - x[:, 2:].sum(1), torch.zeros(len(x))], 1)
    >>> x = 0.4 + 0.2 * torch.rand(30, 1, 2, 2)
    >>> m = offset_drop(Centered(), (x, (x[:, 0, 0].sum(1) < x[:, 0, 1].sum(1)).long()), offsets=(-0.3, 0.3),
    ...                 device="cpu")
    >>> m.value, m.details["worst_offset_accuracy"] == m.details["clean_accuracy"]
    (0.0, True)
    """
    lo, hi = check_bounds(bounds)
    c_lo, c_hi = pair("offsets", offsets)
    grid = positive_int("grid", grid)
    if grid < 2:
        grid = 2
    tol = number("tol", tol, low=0, strict_low=True)
    dev = resolve_device(device)
    cs = torch.linspace(c_lo, c_hi, grid, device=dev)
    common = {"batch_size": batch_size, "samples": samples, "seed": seed, "bounds": bounds, "device": dev}

    def grid_pass(x: torch.Tensor, y: torch.Tensor, rng: object) -> tuple[None, dict[str, torch.Tensor]]:
        """Per sample: correct at each grid offset, correct clean, and where in each grid cell the prediction
        changes (bisected to ``tol``; NaN where it does not)."""
        ok = torch.stack([_correct(model, x, y, float(c), lo, hi) for c in cs], dim=1)  # (n, grid)
        at = torch.full((x.shape[0], grid - 1), float("nan"), device=x.device)
        i, j = (ok[:, :-1] != ok[:, 1:]).nonzero(as_tuple=True)
        if i.numel():
            a, b = cs[j].clone(), cs[j + 1].clone()
            left = ok[i, j]
            while float((b - a).max()) > tol:
                mid = (a + b) / 2
                same = _correct(model, x[i], y[i], mid, lo, hi) == left
                a, b = torch.where(same, mid, a), torch.where(same, b, mid)
            at[i, j] = b
        return None, {"ok": ok, "clean": _correct(model, x, y, 0.0, lo, hi), "at": at}

    with on_device(model, dev), eval_mode(model):
        rows = map_samples(model, data, grid_pass, where="offset_drop", **common)
        ok, clean_ok, at = rows["ok"], rows["clean"], rows["at"]
        grid_c = cs.cpu()
        n = ok.shape[0]
        fi, fj = (~at.isnan()).nonzero(as_tuple=True)
        fb = at[fi, fj]
        # Candidates: every grid point and every located change; accuracy is constant in between.
        cand = torch.cat([grid_c, fb]).unique()
        cell = (torch.searchsorted(grid_c, cand, right=True) - 1).clamp(0, grid - 2)
        # correct(i, p) = ok[i, cell] unless a change of sample i in that cell lies at or before p
        at_p = ok[:, cell].clone()  # (n, P)
        at_p[:, cand >= grid_c[-1]] = ok[:, -1:].expand(n, int((cand >= grid_c[-1]).sum()))
        if fb.numel():
            hit = (cell[None, :] == fj[:, None]) & (cand[None, :] >= fb[:, None])  # (F, P)
            r, cols = hit.nonzero(as_tuple=True)
            at_p[fi[r], cols] = ok[fi[r], fj[r] + 1]
        counts = at_p.sum(0)
        worst = cand[int(torch.argmin(counts))]
        at_worst = float(worst)
        worst_ok = map_samples(model, data, lambda x, y, rng: (None, {"ok": _correct(model, x, y, at_worst, lo, hi)}),
                               where="offset_drop", **common)["ok"]
    broken = int((clean_ok & ~worst_ok).sum())
    mended = int((~clean_ok & worst_ok).sum())
    alpha = 1 - confidence
    lb, hb = (float(v) for v in clopper_pearson(broken, n, alpha=alpha / 2))
    lc, hc = (float(v) for v in clopper_pearson(mended, n, alpha=alpha / 2))
    clean_acc, worst_acc = float(clean_ok.double().mean()), float(worst_ok.double().mean())
    return Measurement(
        name="accuracy drop", value=clean_acc - worst_acc, low=max(-1.0, lb - hc), high=min(1.0, hb - lc), n=n,
        confidence=confidence, context=f"under the worst offset in [{c_lo:g}, {c_hi:g}] ({float(worst):+.3f})",
        details={"worst_offset": float(worst), "clean_accuracy": clean_acc, "worst_offset_accuracy": worst_acc,
                 "broken": broken, "mended": mended, "grid": cs.tolist(),
                 "grid_accuracy": ok.double().mean(0).tolist()},
    )
