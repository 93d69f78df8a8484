"""Helpers the properties share: the data's input shape, batches on the device (checks: robtest.validation)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from robtest import distributed, progress
from robtest.attacks._driver import check_batch, check_bounds, check_logits, first_forward
from robtest.data import indexed_source, iter_batches, iter_indexed, order
from robtest.data._source import _iter_indexed
from robtest.errors import InputError
from robtest.rng import SampleRNG, global_rng_kept, seed_batch


def input_shape(data: object) -> tuple[int, ...]:
    """The shape of one input of ``data`` (without the batch dimension)."""
    for x, _ in iter_batches(data, batch_size=1, seed=None):
        return tuple(x.shape[1:])
    raise InputError("data: expected at least one sample but got an empty dataset")


#: What a per-sample function returns for one batch: a mask of the rows it kept (None: all of them) and a dict
#: of tensors with one row per kept sample.
Rows = tuple[torch.Tensor | None, dict[str, torch.Tensor]]


def map_samples(model: object, data: object, fn: Callable[[torch.Tensor, torch.Tensor, SampleRNG], Rows], *,
                batch_size: int, samples: int | None, seed: int, bounds: tuple[float, float], device: torch.device,
                where: str) -> dict[str, torch.Tensor]:
    """``fn(x, y, rng)`` on every batch of the seeded subset of ``data`` (visited in the data's order), on
    ``device``, with ``rng`` the batch's per-sample streams (:class:`robtest.rng.SampleRNG`, keyed by ``seed``
    and the sample ids); the rows ``fn`` kept, concatenated on the CPU in the data's order, under ``"ids"`` their
    sample ids.

    Under torchrun the batches are split over the ranks (batch ``k`` on rank ``k % world``: the batches one
    process evaluates) and the rows exchanged once, so every rank returns the rows of one process, bit for bit.
    Every random draw is per sample, so another batch size changes no draw either (a kernel may still round a
    value differently in a batch of other rows: continuous values agree to float rounding, outcomes exactly).
    Before the split every rank checks the model's output on the same first points and
    probes them for randomness (:func:`robtest.indicators.probe_model`), so they report the same diagnostics.
    An error on any rank is raised on every rank, naming it (``where`` says what was being evaluated).
    """
    from robtest.indicators import probe_model

    lo, hi = check_bounds(bounds)
    src: object = None
    ids = torch.zeros(0, dtype=torch.long, device="cpu")
    with distributed.in_step(where):  # what can fail on one rank only (its data, its device) fails on all
        src, n = indexed_source(data)
        ids = order(n, samples, seed, in_data_order=True)
        _, xp, yp = next(_iter_indexed(src, batch_size=8, sample_ids=ids[:8].tolist()))
        check_batch(xp, yp, (lo, hi))
        xp, yp = xp.to(device), yp.to(device).long()
        check_logits(first_forward(model, xp), xp, yp)  # type: ignore[arg-type]
        probe_model(model, xp)  # type: ignore[arg-type]

    def share_rows(share: torch.Tensor, positions: torch.Tensor) -> dict[str, torch.Tensor]:
        got: dict[str, list[torch.Tensor]] = {"pos": []}
        if not share.numel():
            return {}
        base = 0  # this rank's whole batches (those of one process): the same batches at any number of ranks
        for b_ids, xb, yb in iter_indexed(src, batch_size=batch_size, sample_ids=share.tolist()):
            check_batch(xb, yb, (lo, hi))
            x, y = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True).long()
            seed_batch(seed, b_ids)  # a randomised model's own draws: the same for this batch on any rank
            keep, rows = fn(x, y, SampleRNG(seed, b_ids, device=device))
            local = torch.arange(base, base + b_ids.shape[0], device="cpu")
            got["pos"].append(local if keep is None else local[keep.cpu()])
            for name, t in rows.items():
                got.setdefault(name, []).append(t.detach().cpu())
            base += b_ids.shape[0]
        out = {name: torch.cat(ts) for name, ts in got.items()}
        out["pos"] = positions[out["pos"]]  # back from this rank's share to positions in the whole visit order
        return out

    with global_rng_kept(device), progress.span(distributed.share_size([len(ids)], batch_size)):
        parts = distributed.map_share(ids, share_rows, batch_size=batch_size, where=where)
    parts = [p for p in parts if p]
    if not parts:
        return {"ids": torch.zeros(0, dtype=torch.long, device="cpu")}
    pos = torch.cat([p["pos"] for p in parts])
    ranked = pos.argsort()
    merged = {name: torch.cat([p[name] for p in parts])[ranked] for name in parts[0] if name != "pos"}
    merged["ids"] = ids[pos[ranked]]
    return merged


def flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    return t.flatten(1).norm(p=p, dim=1)
