"""Accuracy of a model over a dataset, clean or under an attack, with a confidence interval."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import torch

from robtest.attacks import get_attack
from robtest.attacks._driver import check_batch, check_bounds, check_logits, first_forward, predict
from robtest.attacks._norms import get_norm
from robtest.data import iter_indexed
from robtest.errors import BatchSplitWarning, InvalidArgument
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.stats import proportion_ci

__all__ = ["evaluate_accuracy", "describe_attack"]

_SHOWN_OPTIONS = ("steps", "restarts", "step_size", "loss", "alpha")


def describe_attack(attack: str | None, eps: float, options: dict[str, Any]) -> str:
    """'under PGD L∞ ε=0.1, 40 steps' — the words a failure message and the summary use."""
    if attack is None or eps == 0:
        return "on clean inputs"
    spec = get_attack(attack)
    norm = get_norm(options.get("norm", "linf")).symbol
    title = spec.title
    if spec.forwards is not None:  # transfer: name the attack run on the surrogate
        inner = options.get(spec.forwards, inspect.signature(spec.fn).parameters[spec.forwards].default)
        title = f"{spec.title} of {get_attack(inner).title} from a surrogate"
    parts = [f"under {title} {norm} ε={eps:g}"]
    for key in _SHOWN_OPTIONS:
        if key in options:
            val = options[key]
            parts.append(f"{val} {key}" if key in ("steps", "restarts") else f"{key}={val}")
    return ", ".join(parts)


def _batch_counts(model, attack_model, x: torch.Tensor, y: torch.Tensor, spec, eps: float,
                  bounds: tuple[float, float], gen: torch.Generator, options: dict[str, Any]
                  ) -> tuple[int, int, torch.Tensor]:
    """(clean correct, correct under attack, which points stayed correct) on one batch; only clean-correct
    points are attacked. ``attack_model`` is what the attack differentiates (the model, or its EOT wrapper);
    ``model`` gives the separate prediction."""
    logits = first_forward(model, x)
    check_logits(logits, x, y)
    ok = logits.argmax(dim=1) == y
    clean = int(ok.sum())
    if spec is None or eps == 0:
        return clean, clean, ok
    idx = ok.nonzero().squeeze(1)
    if not idx.numel():
        return clean, 0, ok
    x_adv = spec.fn(attack_model, x[idx], y[idx], eps=eps, bounds=bounds, generator=gen, **options)
    robust = torch.zeros_like(ok)
    robust[idx] = predict(model, x_adv).argmax(dim=1) == y[idx]
    return clean, int(robust.sum()), robust


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


class _Splitter:
    """Runs a batch in chunks small enough to fit: on out-of-memory the chunk is halved and retried (the
    generator rewound to where the failed attempt started), and later batches start at the size that worked.
    Warns once per evaluation."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.warned = False

    def run(self, fn: Callable[[torch.Tensor, torch.Tensor], tuple[int, int, torch.Tensor]], x: torch.Tensor,
            y: torch.Tensor, gen: torch.Generator) -> tuple[int, int, torch.Tensor]:
        n = x.shape[0]
        step = n if self.limit is None else min(n, self.limit)
        c = a = 0
        masks = []
        i = 0
        while i < n:
            size = min(step, n - i)
            state = gen.get_state()
            got = self._try(fn, x[i:i + size], y[i:i + size])
            if got is None:
                gen.set_state(state)
                step = max(1, size // 2)
                self.limit = step
                continue
            c, a, i = c + got[0], a + got[1], i + size
            masks.append(got[2])
        return c, a, torch.cat(masks)

    def _try(self, fn, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int, torch.Tensor] | None:
        try:
            return fn(x, y)
        except RuntimeError as err:
            if not _is_oom(err) or x.shape[0] <= 1:
                raise
            msg = str(err).splitlines()[0][:200]
        # Out of the except block, so the failed attempt's tensors (held by the traceback) are freed first.
        if x.is_cuda:
            torch.cuda.empty_cache()
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"a batch of {x.shape[0]} did not fit in memory ({msg}); robtest splits batches in halves and "
                f"retries, which changes no result but costs time. Pass a smaller batch_size "
                f"(e.g. {max(1, x.shape[0] // 2)}) to avoid the failed attempts.",
                BatchSplitWarning,
                stacklevel=4,
            )
        return None


def evaluate_accuracy(
    model: torch.nn.Module,
    data: object,
    *,
    attack: str | None = None,
    eps: float = 0.0,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    samples: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    confidence: float = 0.95,
    stop: Callable[[int, int], bool] | None = None,
    eot: int | None = None,
    checks: bool = True,
    sample_ids: list[int] | None = None,
    **options: Any,
) -> Measurement:
    """Accuracy of ``model`` on ``data`` under ``attack`` at radius ``eps`` (clean accuracy when attack is None).

    Each batch goes to ``device`` on its own (the dataset never moves at once), in the seeded order of
    :func:`robtest.data.order`. Points the model already gets wrong are not attacked. Accuracy is counted from
    a separate forward pass on the returned examples. The model is evaluated in eval mode and given back in the
    mode and on the device it had; torch's global RNG is seeded from ``seed`` for the evaluation (a randomised
    model gives the same numbers on a rerun) and restored afterwards.

    The evaluation checks itself (:mod:`robtest.indicators`): a model whose two forward passes differ is
    *randomised* and is attacked and predicted through :class:`robtest.EOT` (``eot`` draws, default 8 for the
    attack and 4× that for the prediction; ``eot=N`` forces it for any model); masking is watched at every
    attack step; with ``checks`` (default) a few points left robust are attacked again at ε/2, with ε covering
    the whole box, with 4× the steps and with Square. What fires is in the measurement's ``diagnostics``.

    ``stop(correct, seen)``, when given, is asked after every batch and ends the evaluation early when it
    returns True (the sequential verdicts use it).

    A batch that does not fit in memory (CUDA out-of-memory) is split in halves and retried, with a
    :class:`~robtest.errors.BatchSplitWarning`. Deterministic attacks give exactly the unsplit result; with a
    random start the halves draw their starts separately, so examples (not the attack's strength) may differ.

    ``sample_ids`` evaluates exactly those samples (in that order) instead of the seeded order; ``samples`` and
    ``seed``'s subset are then ignored (a baseline comparison pairs the outcomes of the same samples).

    Returns a :class:`~robtest.Measurement` with a Wilson interval; ``details`` holds the clean accuracy, the
    visited ``sample_ids`` and their ``outcomes`` (1: still correct under the attack), and ``data_fingerprint``
    (sha256 of the ids and labels), so that two evaluations can be paired sample by sample.

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible initial weights
    >>> from robtest.data import digits_tensors
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> m = evaluate_accuracy(model, digits_tensors("test"), attack="fgsm", eps=0.1, device="cpu")
    >>> m.n
    540
    >>> len(m.details["outcomes"]) == len(m.details["sample_ids"]) == 540
    True
    """
    from robtest import diagnostics
    from robtest.indicators import PROBE_POINTS, check_attack, probe_model
    from robtest.models import EOT

    spec = get_attack(attack) if attack is not None else None
    if spec is not None:
        spec.check_options(options)
    elif options:
        raise InvalidArgument(f"attack options: expected none without an attack but got {', '.join(sorted(options))}; "
                              "name the attack (e.g. attack='pgd') or drop the options")
    if eot is not None and (isinstance(eot, bool) or not isinstance(eot, int) or eot < 1):
        raise InvalidArgument(f"eot: expected an integer >= 1 (draws per gradient) or None but got {eot!r}")
    lo, hi = check_bounds(bounds)
    dev = resolve_device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    clean_ok = adv_ok = seen = 0
    split = _Splitter()
    kept_x: list[torch.Tensor] = []
    kept_y: list[torch.Tensor] = []
    kept = 0
    ids_seen: list[int] = []
    outcomes: list[int] = []
    digest = hashlib.sha256()
    attack_model = predict_model = model
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with (torch.random.fork_rng(devices=devices), diagnostics.collecting() as found, on_device(model, dev),
          eval_mode(model), contextlib.ExitStack() as extra):
        for value in options.values():
            if isinstance(value, torch.nn.Module):  # a transfer surrogate goes where the model goes, once
                extra.enter_context(on_device(value, dev))
        torch.manual_seed(int(seed))
        first = True
        for ids, xb, yb in iter_indexed(data, batch_size=batch_size, samples=samples, seed=seed,
                                        sample_ids=sample_ids):
            check_batch(xb, yb, (lo, hi))
            x = xb.to(dev, non_blocking=True)
            y = yb.to(dev, non_blocking=True).long()
            if first:
                first = False
                randomized = probe_model(model, x).randomized
                if randomized or eot is not None:
                    draws = eot or 8
                    attack_model, predict_model = EOT(model, draws=draws), EOT(model, draws=4 * draws)
            run = functools.partial(_batch_counts, predict_model, attack_model, spec=spec, eps=eps, bounds=(lo, hi),
                                    gen=gen, options=options)
            c, a, robust = split.run(run, x, y, gen)
            clean_ok += c
            adv_ok += a
            seen += y.shape[0]
            ids_seen += ids.tolist()
            outcomes += robust.to(torch.int8).tolist()
            digest.update(ids.to(torch.int64).numpy().tobytes())
            digest.update(yb.to(torch.int64).numpy().tobytes())
            if checks and spec is not None and kept < PROBE_POINTS and a:
                kept_x.append(x[robust][:PROBE_POINTS - kept])
                kept_y.append(y[robust][:PROBE_POINTS - kept])
                kept += kept_x[-1].shape[0]
            if stop is not None and stop(adv_ok, seen):
                break
        if kept:
            check_attack(predict_model, attack_model, spec, torch.cat(kept_x), torch.cat(kept_y), eps=float(eps),
                         bounds=(lo, hi), options=options, generator=gen, chunk=split.limit)
    low, high = proportion_ci(adv_ok, seen, confidence=confidence)
    return Measurement(
        name="accuracy",
        value=adv_ok / seen,
        low=low,
        high=high,
        n=seen,
        confidence=confidence,
        context=describe_attack(attack, eps, options) + (" with EOT" if attack_model is not model else ""),
        details={"correct": adv_ok, "clean_accuracy": clean_ok / seen, "attack": attack or "none",
                 "eps": float(eps), "eot_draws": getattr(attack_model, "draws", 0), "sample_ids": ids_seen,
                 "outcomes": outcomes,
                 "data_fingerprint": digest.hexdigest()},
        diagnostics=found.items(),
    )
