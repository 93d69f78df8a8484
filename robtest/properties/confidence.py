"""How confident the model is on non-examples: fooling images and rubbish inputs (Galloway 2018 W2, Goodfellow G5).

A robust model should not be sure about inputs that are not digits (or cats). Two sources of non-examples:

* ``"fooling"`` (Galloway et al. 2018): start from noise ``N(0.5, std²)`` clipped to the box and take ``steps``
  signed-gradient steps of ``step_size`` up the log-probability of a target class; the classes take turns.
  The value per non-example is the probability the model gives the target class at the end.
* rubbish inputs (Goodfellow et al. 2015): ``"gaussian"`` noise ``N(mid, std²)`` clipped to the box,
  ``"uniform"`` noise over the box, or ``"constant"`` images of one random intensity. The value is the
  highest softmax probability (the confidence of whatever the model predicts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robtest import distributed, progress
from robtest.attacks._driver import check_bounds
from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.properties.sequential import Budget, SequentialCheck, look_schedule
from robtest.rng import SampleRNG, as_rng, global_rng_kept, seed_batch
from robtest.stats import bootstrap_ci
from robtest.validation import choice, number, positive_int

__all__ = ["SOURCES", "STATISTICS", "non_example_confidence", "non_examples"]

SOURCES = ("fooling", "gaussian", "uniform", "constant")
STATISTICS = ("mean", "max")


def non_examples(model: torch.nn.Module, n: int, *, shape: Sequence[int], source: str = "fooling",
                 classes: Sequence[int] = (0,), steps: int = 100, step_size: float = 0.01, std: float = 0.1,
                 bounds: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | SampleRNG | None = None,
                 device: torch.device | str = "cpu", offset: int = 0, index: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` non-examples and the class each is judged by (the target for fooling images, else the prediction).

    The target of non-example ``i`` is ``classes[(offset + i) % len(classes)]``, or ``classes[index[i] %
    len(classes)]`` when ``index`` (the non-examples' numbers) is given. The model is used as given (call it
    inside :func:`robtest.models.eval_mode`).
    """
    lo, hi = check_bounds(bounds)
    dev = torch.device(device)
    size = (n, *shape)
    mid, width = (lo + hi) / 2, hi - lo
    # Non-example i is drawn from its own stream (seed, offset + i) when ``generator`` is a SampleRNG: the same
    # image whatever the batch it is made in.
    rng = as_rng(generator)
    if source in ("fooling", "gaussian"):
        x = (mid + std * width * rng.randn(size, device=dev)).clamp_(lo, hi)
    elif source == "uniform":
        x = lo + width * rng.rand(size, device=dev)
    else:
        v = lo + width * rng.rand((n,) + (1,) * len(shape), device=dev)
        x = v.expand(size).clone()
    if source != "fooling":
        with torch.no_grad():
            return x, model(x).argmax(dim=1)
    number = torch.arange(n, device=dev) + offset if index is None else torch.as_tensor(index, device=dev)
    idx = number % len(classes)
    target = torch.as_tensor(list(classes), device=dev)[idx]
    with torch.enable_grad():
        for _ in range(steps):
            xg = x.detach().requires_grad_(True)
            logp = F.log_softmax(model(xg), dim=1).gather(1, target[:, None]).sum()
            (g,) = torch.autograd.grad(logp, xg)
            x = (x + step_size * width * g.sign()).clamp_(lo, hi)
    return x.detach(), target


_SHOWN = 8  # non-examples kept for the report
_SHOWN_MAX_VALUES = 3 * 32 * 32  # only inputs up to CIFAR size are kept


def _keep_most_confident(shown: list[tuple[float, int, torch.Tensor, int]], x: torch.Tensor, p: torch.Tensor,
                         c: torch.Tensor, *, index: list[int]) -> None:
    """Keep the ``_SHOWN`` most confident images (ties: the earlier one) of those seen so far, in place;
    ``index`` holds the numbers of the non-examples ``x``."""
    if x.dim() not in (3, 4) or x[0].numel() > _SHOWN_MAX_VALUES:
        return
    k = min(_SHOWN, x.shape[0])
    top = torch.topk(p, k).indices.tolist()
    for j in top:
        img = x[j].detach().float().cpu()
        shown.append((float(p[j]), index[j], img if img.dim() == 3 else img[None], int(c[j])))
    shown.sort(key=lambda t: (-t[0], t[1]))
    del shown[_SHOWN:]


def non_example_confidence(
    model: torch.nn.Module,
    *,
    shape: Sequence[int],
    source: str = "fooling",
    classes: int | Sequence[int] | None = None,
    samples: int = 200,
    steps: int = 100,
    step_size: float = 0.01,
    std: float = 0.1,
    statistic: str = "mean",
    ceiling: float | None = None,
    sequential: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "auto",
    confidence: float = 0.95,
    budget: Budget | None = None,
) -> Measurement:
    """The model's confidence on ``samples`` non-examples from ``source``: their mean (or max) softmax probability.

    ``classes`` (a count or a list of class indices; default all the model's outputs) are the fooling targets
    and the classes the per-class breakdown (``details["per_class"]``) reports. ``step_size`` and ``std`` are in
    units of the box width. The interval of the mean is a seeded bootstrap; with ``sequential=True`` and a
    ``ceiling`` the non-examples are made in batches and the evaluation stops once a Hoeffding interval with
    the error rate spent over planned looks (see :mod:`robtest.properties.sequential`) clears the ceiling, and
    that interval is reported. For ``statistic="max"`` the value is the largest confidence found, a search
    result: the interval runs from it to 1 (no finite search certifies a maximum), and a sequential run stops
    as soon as one non-example beats the ceiling. Sequential runs look after ``samples/16`` non-examples (at
    least 16), then at twice as many, and so on. A ``budget`` (:class:`~robtest.properties.sequential.Budget`)
    is read at the same looks and ends the run when it runs out (``details["budget"]`` names it). Non-example
    ``i`` is drawn from its own stream (``seed``, ``i``), so the batch size changes no number.

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible initial weights
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> m = non_example_confidence(model, shape=(1, 2, 2), source="uniform", samples=50, device="cpu")
    >>> m.name, m.n, 1 / 3 <= m.value <= 1, m.low <= m.value <= m.high
    ('confidence', 50, True, True)
    """
    source = choice("source", source, SOURCES)
    statistic = choice("statistic", statistic, STATISTICS)
    samples, steps, batch_size = (positive_int(k, v) for k, v in
                                  (("samples", samples), ("steps", steps), ("batch_size", batch_size)))
    step_size = number("step_size", step_size, low=0, strict_low=True)
    std = number("std", std, low=0)
    if ceiling is not None:
        ceiling = number("ceiling", ceiling, low=0, high=1)
    shape = tuple(int(s) for s in shape)
    dev = resolve_device(device)
    values: list[torch.Tensor] = []
    judged: list[torch.Tensor] = []
    check = None
    # Sequential looks at a 16th of the samples (at least 16 images), doubling: planned in sample counts, so the
    # batch size changes no number (batches are cut at the looks).
    looks = look_schedule(samples, max(16, -(-samples // 16))) if sequential and ceiling is not None else (samples,)
    if sequential and ceiling is not None and statistic == "mean":
        check = SequentialCheck(n_total=samples, first=looks[0], threshold=ceiling, comparison="<=",
                                confidence=confidence, kind="mean")
    cls: list[int] = []
    out_of_budget = budget.stopper(None) if budget is not None else None
    with on_device(model, dev), eval_mode(model):
        with distributed.in_step("non_example_confidence"):  # a model that fails on one rank fails on all
            with torch.no_grad():
                n_out = model(torch.full((1, *shape), sum(check_bounds(bounds)) / 2, device=dev)).shape[1]
            if classes is None:
                cls = list(range(n_out))
            elif isinstance(classes, int) and not isinstance(classes, bool):
                cls = list(range(positive_int("classes", classes)))
            else:
                cls = [int(c) for c in classes]  # type: ignore[union-attr]
            if not cls or min(cls) < 0 or max(cls) >= n_out:
                raise InvalidArgument(f"classes: expected class indices in 0..{n_out - 1} but got {classes!r}")
        seen, total, top = 0, 0.0, 0.0
        shown: list[tuple[float, int, torch.Tensor, int]] = []

        def make(share: torch.Tensor, _: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
            """This rank's non-examples ``share`` (their numbers), in batches: probabilities, classes, and
            the most confident images among them."""
            ps, cs, mine = [], [], []
            for i in range(0, share.numel(), batch_size):
                part = share[i:i + batch_size]
                rng = SampleRNG(seed, part, device=dev)
                seed_batch(seed, part)  # a randomised model's own draws: the same for this batch on any rank
                x, c = non_examples(model, part.numel(), shape=shape, source=source, classes=cls, steps=steps,
                                    step_size=step_size, std=std, bounds=bounds, generator=rng, device=dev,
                                    index=part)
                with torch.no_grad():
                    p = F.softmax(model(x), dim=1).gather(1, c[:, None]).squeeze(1)
                ps.append(p.cpu())
                cs.append(c.cpu())
                _keep_most_confident(mine, x, p, c, index=part.tolist())
                progress.advance(part.numel(), 0)
            empty = torch.zeros(0, device="cpu")
            return (torch.cat(ps) if ps else empty, torch.cat(cs) if cs else empty.long(), mine)

        with progress.span(distributed.share_size(looks, batch_size)):  # this rank's share of all the looks: one pass
            for look in looks:
                # One segment: the non-examples up to the next look, split over the torchrun ranks (all on one),
                # each drawn from its own stream (seed, number): the values of one process at any batch size.
                segment = torch.arange(seen, look, device="cpu")
                with global_rng_kept(dev):
                    parts = distributed.map_share(segment, make, batch_size=batch_size, where="non_example_confidence")
                k = segment.numel()
                p_seg = torch.zeros(k, dtype=parts[0][0].dtype, device="cpu")
                c_seg = torch.zeros(k, dtype=torch.long, device="cpu")
                for r, (p_r, c_r, mine) in enumerate(parts):
                    at = distributed.share_positions(k, batch_size, r)
                    p_seg[at], c_seg[at] = p_r, c_r
                    shown.extend(mine)
                shown.sort(key=lambda t: (-t[0], t[1]))
                del shown[_SHOWN:]
                values.append(p_seg)
                judged.append(c_seg)
                seen = look
                total += float(p_seg.sum())
                top = max(top, float(p_seg.max()))
                if sequential and ceiling is not None:
                    if check is not None and check(total, seen):
                        break
                    if statistic == "max" and top > ceiling:
                        break
                # a budget ran out: read at the looks, like the sequential check
                if out_of_budget is not None and seen < samples and out_of_budget(total, seen):
                    break
    v = torch.cat(values).double()
    c_all = torch.cat(judged)
    per_class = {int(k): float(v[c_all == k].mean()) for k in sorted(set(c_all.tolist()))}
    details = {"source": source, "statistic": statistic, "fraction_above_half": float((v > 0.5).double().mean()),
               "max": float(v.max()), "mean": float(v.mean()), "per_class": per_class,
               "worst_class": max(per_class, key=per_class.__getitem__), "sequential": False,
               "samples_used": int(v.numel()), "samples_planned": samples}
    if shown:  # the report shows the most confident non-examples (small inputs only: the JSON stays small)
        details["examples"] = {"images": [[[[round(float(p), 3) for p in row] for row in ch] for ch in img]
                                          for _, _, img, _ in shown],
                               "confidence": [round(p, 5) for p, _, _, _ in shown],
                               "class": [k for _, _, _, k in shown]}
    if statistic == "max":
        value, low, high = float(v.max()), float(v.max()), 1.0
        details["stopped_early"] = int(v.numel()) < samples
    elif check is not None:
        value = float(v.mean())
        low, high = check.interval(float(v.sum()), int(v.numel()))
        details.update(check.details(int(v.numel())))
    else:
        value = float(v.mean())
        low, high = bootstrap_ci(v.numpy(), np.mean, confidence=confidence, seed=seed)
    if statistic == "mean":  # non-example i starts from the same seeded draw in every run: a baseline pairs them
        details.update(per_sample=[round(float(a), 7) for a in v], per_sample_statistic="mean")
    if budget is not None and budget.ran_out(int(v.numel()), samples):
        details["budget"] = budget.ran_out(int(v.numel()), samples)
    what = (f"on fooling images ({steps} steps of {step_size:g} from N(0.5, {std:g}²))" if source == "fooling"
            else f"on {source} {'images' if source == 'constant' else 'noise'}")
    return Measurement(name=f"{statistic} confidence" if statistic == "max" else "confidence", value=value, low=low,
                       high=high, n=int(v.numel()), confidence=confidence, context=what, details=details)
