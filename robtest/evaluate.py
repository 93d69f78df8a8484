"""Accuracy of a model over a dataset, clean or under an attack, with a confidence interval."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from robtest import distributed, progress
from robtest.attacks import get_attack
from robtest.attacks._driver import check_batch, check_bounds, check_logits, first_forward, predict
from robtest.attacks._norms import get_norm
from robtest.data import indexed_source, iter_indexed, order
from robtest.data._source import _iter_indexed, check_sizes
from robtest.errors import BatchSplitWarning, InvalidArgument
from robtest.measurement import Measurement
from robtest.models import eval_mode, on_device, resolve_device
from robtest.rng import SampleRNG, global_rng_kept, seed_batch
from robtest.stats import corrected_counts, exceeds_noise, proportion_ci
from robtest.validation import integer

__all__ = ["evaluate_accuracy", "describe_attack", "corrected", "per_class", "flip_matrix"]

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


#: The stream (see :class:`robtest.rng.SampleRNG.fork`) of the full-precision attack on the points a reduced-
#: precision attack claimed fooled but the full-precision prediction does not.
_RECHECK_STREAM = 0x46503332


def _batch_counts(model, attack_model, x: torch.Tensor, y: torch.Tensor, rng: SampleRNG, *, spec, eps: float,
                  bounds: tuple[float, float], options: dict[str, Any], full_model=None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(which points are correct on clean inputs, which stayed correct under the attack, the final examples, the
    class predicted for each: the attacked example's for attacked points, else the clean one's) on one batch; only
    clean-correct points are attacked, each drawing from its own stream of ``rng``. ``attack_model`` is what the
    attack differentiates (the model, or its EOT wrapper); ``model`` gives the separate prediction.

    ``full_model``, given when ``attack_model`` computes in reduced precision (bf16): the attack decides in that
    precision when a point is fooled (early stop, the first fooling example kept), and near the decision boundary,
    where an attack leaves its points, bf16 rounding often calls a point fooled that the full-precision prediction
    still gets right. Such a point was not attacked to the end: it is attacked again, in full precision
    (``full_model``), from its own stream, and judged by ``model`` as every point is."""
    logits = first_forward(model, x)
    check_logits(logits, x, y)
    pred = logits.argmax(dim=1)
    ok = pred == y
    if spec is None or eps == 0:
        return ok, ok, x, pred
    idx = ok.nonzero().squeeze(1)
    if not idx.numel():
        return ok, ok, x, pred
    x_adv = spec.fn(attack_model, x[idx], y[idx], eps=eps, bounds=bounds, generator=rng.take(idx), **options)
    after = predict(model, x_adv).argmax(dim=1)
    if full_model is not None:
        claimed = predict(attack_model, x_adv).argmax(dim=1) != y[idx]  # fooled in the attack's own precision
        again = ((after == y[idx]) & claimed).nonzero().squeeze(1)
        if again.numel():  # one host sync per batch
            sub = idx[again]
            x_full = spec.fn(full_model, x[sub], y[sub], eps=eps, bounds=bounds,
                             generator=rng.take(sub).fork(_RECHECK_STREAM), **options)
            x_adv[again] = x_full
            after[again] = predict(model, x_full).argmax(dim=1)
    robust = torch.zeros_like(ok)
    robust[idx] = after == y[idx]
    final = x.clone()
    final[idx] = x_adv
    pred = pred.clone()
    pred[idx] = after
    return ok, robust, final, pred


_CHECKPOINT: contextvars.ContextVar[list | None] = contextvars.ContextVar("robtest_checkpoint", default=None)


@contextlib.contextmanager
def checkpointing(prefix: str) -> Iterator[None]:
    """Inside the block every :func:`evaluate_accuracy` (outside torchrun) saves its progress after each segment
    to ``<prefix>.<k>.pt`` (k: the k-th evaluation in the block, the same order on every run) and, when that file
    exists, resumes from it: the segments it holds are not evaluated again. Every sample draws from its own
    stream and the batches are those of an uninterrupted run, so a resumed evaluation gives its numbers. The
    files are read with ``torch.load(weights_only=True)`` (no pickled code) and are the caller's to remove
    (:func:`drop_checkpoints`) once the property is done."""
    token = _CHECKPOINT.set([prefix, 0])
    try:
        yield
    finally:
        _CHECKPOINT.reset(token)


def drop_checkpoints(prefix: str) -> None:
    """Remove the files of :func:`checkpointing` under ``prefix``."""
    from pathlib import Path

    p = Path(prefix)
    for f in p.parent.glob(p.name + ".*.pt"):
        f.unlink(missing_ok=True)


def _next_checkpoint() -> str | None:
    state = _CHECKPOINT.get()
    if state is None or distributed.active():
        return None
    state[1] += 1
    return f"{state[0]}.{state[1]}.pt"


def _load_checkpoint(path: str | None, planned: list[int]) -> dict[str, Any] | None:
    import os

    if path is None or not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - half-written or from another robtest: evaluate from the start
        return None
    return state if isinstance(state, dict) and state.get("planned") == planned else None


def _save_checkpoint(path: str, state: dict[str, Any]) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    os.close(fd)
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a process killed while saving leaves the previous checkpoint


def _rows(items: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]], dev: torch.device) -> list:
    return [(int(p), x.to(dev), y.to(dev), a.to(dev)) for p, x, y, a in items]


EXAMPLES = 4  # adversarial examples an accuracy measurement keeps for the report
_EXAMPLE_SIZE = 3 * 32 * 32  # larger inputs are not kept (the report's JSON stays small)


def _examples(model, fooled: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]], visit: torch.Tensor
              ) -> dict[str, Any] | None:
    """The first points the attack fooled, in the visit order (so the same on any batch size or number of
    ranks): clean and adversarial images (C, H, W lists rounded to 4 decimals), the true label, and the class and
    softmax confidence the model gives each."""
    if not fooled or fooled[0][1][0].numel() > _EXAMPLE_SIZE or fooled[0][1].dim() != 4:
        return None
    x, y, a = (torch.cat([k[i] for k in fooled]) for i in (1, 2, 3))
    with torch.no_grad():
        pc, pa = (predict(model, t).float().softmax(dim=1) for t in (x, a))
    cc, ca = pc.max(dim=1), pa.max(dim=1)

    def img(t: torch.Tensor) -> list:
        return [[[round(float(v), 4) for v in row] for row in ch] for ch in t.detach().cpu().float()]

    return {"ids": [int(visit[k[0]]) for k in fooled], "label": y.tolist(),
            "clean": [img(t) for t in x], "adversarial": [img(t) for t in a],
            "clean_class": cc.indices.tolist(), "clean_confidence": [round(float(v), 4) for v in cc.values],
            "adversarial_class": ca.indices.tolist(),
            "adversarial_confidence": [round(float(v), 4) for v in ca.values]}


def corrected(counter: dict[str, Any], n: int, interval: Callable[[int], tuple[float, float]],
              confidence: float = 0.95) -> dict[str, Any]:
    """The accuracy once the indicator checks' counterexamples are folded in (``details["corrected"]``), from
    ``counter`` (``details["counterexamples"]``) over ``n`` samples, with ``interval(count) -> (low, high)`` the
    evaluation's own interval (Wilson, or the sequential one where it stopped).

    >>> corrected({"robust": 50, "probed": 32, "found": 0, "extrapolated": False}, 100, lambda k: (0.0, 1.0))
    {'value': 0.5, 'low': 0.0, 'high': 1.0, 'found': 0, 'probed': 32, 'extrapolated': False}
    """
    if not n:
        return {"value": 0.0, "low": 0.0, "high": 1.0, "found": 0, "probed": 0, "extrapolated": False}
    est, low, high = corrected_counts(counter["robust"], counter["probed"], counter["found"],
                                      extrapolate=counter["extrapolated"], confidence=confidence)
    lo, hi = interval(max(low, 0))[0], interval(max(high, 0))[1]
    return {"value": max(est, 0.0) / n, "low": lo, "high": hi, "found": counter["found"],
            "probed": counter["probed"], "extrapolated": counter["extrapolated"]}


def per_class(labels: list[int], outcomes: list[int], *, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Accuracy per true class with its Wilson interval: where robustness is lost.

    >>> per_class([0, 0, 1, 1, 1], [1, 0, 1, 1, 0])["1"]["correct"], per_class([0, 1], [1, 0])["0"]["n"]
    (2, 1)
    """
    out: dict[str, dict[str, Any]] = {}
    for c in sorted(set(labels)):
        got = [o for lab, o in zip(labels, outcomes, strict=True) if lab == c]
        k, n = sum(got), len(got)
        low, high = proportion_ci(k, n, confidence=confidence)
        out[str(c)] = {"n": n, "correct": k, "accuracy": k / n, "low": low, "high": high}
    return out


def flip_matrix(labels: list[int], predicted: list[int]) -> list[list[int]]:
    """Counts ``[true][predicted]`` over the samples (the class after the attack for attacked points): which
    class the attacks push each class into. Square, as wide as the largest class seen.

    >>> flip_matrix([0, 0, 1], [0, 1, 1])
    [[1, 1], [0, 1]]
    """
    size = max([*labels, *predicted], default=-1) + 1
    out = [[0] * size for _ in range(size)]
    for t, p in zip(labels, predicted, strict=True):
        out[t][p] += 1
    return out


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


class _Splitter:
    """Runs a batch in chunks small enough to fit: on out-of-memory the chunk is halved and retried, and later
    batches start at the size that worked. Every sample draws from its own stream (:class:`SampleRNG`), so a
    split changes no number. Warns once per evaluation."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.warned = False

    def run(self, fn: Callable[[torch.Tensor, torch.Tensor, SampleRNG], tuple[torch.Tensor, ...]],
            x: torch.Tensor, y: torch.Tensor, rng: SampleRNG) -> tuple[torch.Tensor, ...]:
        n = x.shape[0]
        step = n if self.limit is None else min(n, self.limit)
        parts: list[tuple[torch.Tensor, ...]] = []
        i = 0
        while i < n:
            size = min(step, n - i)
            got = self._try(fn, x[i:i + size], y[i:i + size], rng.rows(slice(i, i + size)))
            if got is None:
                step = max(1, size // 2)
                self.limit = step
                continue
            i += size
            parts.append(got)
        return tuple(torch.cat(col) for col in zip(*parts, strict=True))

    def _try(self, fn, x: torch.Tensor, y: torch.Tensor, rng: SampleRNG) -> tuple[torch.Tensor, ...] | None:
        try:
            return fn(x, y, rng)
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

_FINGERPRINT_BLOCK = 256

#: The stream (see :class:`robtest.rng.SampleRNG.fork`) the indicator checks' attacks draw from.
_PROBE_STREAM = 0x50524F42


@contextlib.contextmanager
def _channels_last(model: torch.nn.Module):
    """The model's 4-d weights in channels-last memory for the evaluation, each given back in the layout it had."""

    def tensors() -> dict[str, torch.Tensor]:
        return {n: t for n, t in (*model.named_parameters(), *model.named_buffers()) if t.dim() == 4}

    was_last = {n for n, t in tensors().items()
                if t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()}
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)
        with torch.no_grad():
            for n, t in tensors().items():
                if n in was_last:
                    t.data = t.data.contiguous(memory_format=torch.channels_last)


def _segments(n: int, stop: object, batch_size: int) -> list[int]:
    """Where the evaluation pauses to combine ranks and ask ``stop``: the planned looks of a sequential check
    (sample counts that do not depend on the batch size), every batch for any other ``stop``, else the end."""
    looks = getattr(stop, "planned", None)
    if looks is not None:
        ends = sorted({min(int(k), n) for k in looks} | {n})
    elif stop is not None:
        ends = list(range(batch_size, n, batch_size)) + [n]
    else:
        ends = [n]
    return [e for e in ends if e > 0]


def _evaluate_share(run, split: _Splitter, src: object, share: torch.Tensor, positions: torch.Tensor, offset: int,
                    batch_size: int, seed: int, dev: torch.device, bounds: tuple[float, float],
                    kept: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] | None,
                    fooled: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
                    ) -> list[tuple[int, int, int, int, int]]:
    """This rank's samples ``share`` (at ``positions`` of a segment starting at position ``offset``): (id,
    label, clean, robust, predicted class) each. Keeps the first robust points (with their positions in the visit
    order and their final examples) in ``kept`` for the checks, and the first points the attack fooled in
    ``fooled`` (the report shows them)."""
    from robtest.indicators import PROBE_POINTS

    out: list[tuple[int, int, int, int, int]] = []
    if not share.numel():
        return out
    for ids, xb, yb in iter_indexed(src, batch_size=batch_size, sample_ids=share.tolist()):
        check_batch(xb, yb, bounds)
        x = xb.to(dev, non_blocking=True)
        y = yb.to(dev, non_blocking=True).long()
        rng = SampleRNG(seed, ids, device=dev)
        seed_batch(seed, ids)  # a randomised model's own draws: the same for this batch on any rank
        ok, robust, final, pred = split.run(run, x, y, rng)
        got = robust.to(torch.int8).tolist()
        out += [(int(i), int(lab), int(c), int(r), int(p)) for i, lab, c, r, p in
                zip(ids.tolist(), yb.tolist(), ok.to(torch.int8).tolist(), got, pred.tolist(), strict=True)]
        base = len(out) - len(got)
        if fooled is not None and len(fooled) < EXAMPLES:
            for j in (ok & ~robust).nonzero().squeeze(1).tolist()[:EXAMPLES - len(fooled)]:
                fooled.append((offset + int(positions[base + j]), x[j:j + 1], y[j:j + 1], final[j:j + 1]))
        if kept is not None and len(kept) < PROBE_POINTS and any(got):
            for j in robust.nonzero().squeeze(1).tolist()[:PROBE_POINTS - len(kept)]:
                pos = offset + int(positions[base + j])  # back to the position in the visit order
                kept.append((pos, x[j:j + 1], y[j:j + 1], final[j:j + 1]))
    return out


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
    precision: str = "fp32",
    channels_last: bool = False,
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
    the whole box, with 2× the steps and one more restart and with Square (200 queries), and their final examples
are re-predicted on a copy of the model taken before the first query (``stateful``). What fires is in the
measurement's ``diagnostics``; the counterexamples the checks find are folded into ``details["corrected"]`` (see
:func:`corrected`), which is what verdicts read.

    ``stop(correct, seen)``, when given, is asked at each of its ``planned`` sample counts (a
    :class:`~robtest.properties.SequentialCheck`; after every batch for a plain callable) and ends the
    evaluation early when it returns True (the sequential verdicts use it).

    A batch that does not fit in memory (CUDA out-of-memory) is split in halves and retried, with a
    :class:`~robtest.errors.BatchSplitWarning`. It changes no number: every random start, restart and search
    step is drawn per (``seed``, sample id) (:class:`robtest.rng.SampleRNG`), so the batch size, the split, the
    number of ranks (:mod:`robtest.distributed`) and the order of the shards give every sample the same outcome.
    Sequential looks (``stop`` with ``planned`` sample counts) cut the batches there.

    ``sample_ids`` evaluates exactly those samples (in that order) instead of the seeded order; ``samples`` and
    ``seed``'s subset are then ignored (a baseline comparison pairs the outcomes of the same samples).

    GPU throughput options: ``precision="bf16"`` runs the attack's forward and backward passes under bf16
    autocast and ``channels_last=True`` gives it channels-last image batches (the model's weights converted
    for the evaluation and restored after); the separate prediction that counts a point robust stays in the
    model's own precision (fp32), so these can only change which examples the attack finds. The attack itself
    decides in bf16 when a point is fooled (early stop, the first fooling example kept), and near the decision
    boundary, where attacks leave their points, bf16 rounding calls points fooled that fp32 still classifies
    right: that stopped the attack on them early and raised a random ResNet-18's accuracy at ε=1/255 by 0.098
    (issue 19). Every point the bf16 attack claims fooled but the fp32 prediction does not is therefore
    attacked again in fp32 (from a stream of its own) and judged in fp32; the cost is that of the points in
    dispute only. Measured on the CPU with this recheck: the same outcome for every point as fp32 on digits MLPs
    (2 seeds, PGD-10 and ``auto``, 200 points) and on a random ResNet-18 at ε=1/255 (256 points, PGD-10 and
    ``auto``); what can still differ is a point both precisions leave robust after the bf16 attack although
    an fp32 attack would have fooled it (a weaker bf16 trajectory), or one the bf16 trajectory fools and fp32's
    does not. The stated tolerance is 0.02 (``tests/test_evaluate.py``); ``benchmarks/gpu_check.py`` measures
    it on a GPU. Check your model with both before gating on bf16.

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
    from robtest.adapters import Logits, adapt_outputs
    from robtest.indicators import PROBE_POINTS, check_attack, check_stateful, probe_model, settle, snapshot
    from robtest.models import EOT, Fast
    from robtest.settings import PRECISIONS

    spec = get_attack(attack) if attack is not None else None
    if spec is not None:
        spec.check_options(options)
    elif options:
        raise InvalidArgument(f"attack options: expected none without an attack but got {', '.join(sorted(options))}; "
                              "name the attack (e.g. attack='pgd') or drop the options")
    integer("eot", eot, hint=" (draws per gradient)", optional=True)
    if precision not in PRECISIONS:
        raise InvalidArgument(f"precision: expected one of {', '.join(PRECISIONS)} but got {precision!r}")
    lo, hi = check_bounds(bounds)
    dev = resolve_device(device)
    check_sizes(batch_size, samples)
    clean_ok = adv_ok = seen = 0
    split = _Splitter()
    # (position in the visit order, x, y, final example): the probe points
    kept: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    ids_seen: list[int] = []
    labels_seen: list[int] = []
    outcomes: list[int] = []
    predicted: list[int] = []  # the class each sample ends in (after the attack where it was attacked)
    fooled: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # the first examples, for the report
    show = spec is not None and eps > 0
    attack_model = predict_model = model
    with (global_rng_kept(dev), diagnostics.collecting() as found, on_device(model, dev), eval_mode(model),
          contextlib.ExitStack() as extra):
        for value in options.values():
            if isinstance(value, torch.nn.Module):  # a transfer surrogate goes where the model goes, once
                extra.enter_context(on_device(value, dev))
        torch.manual_seed(int(seed))
        # the model as deployed, before any query: a stateful model answers the final examples otherwise
        fresh = snapshot(model) if checks and spec is not None else None
        with distributed.in_step("evaluate_accuracy"):  # what can fail on one rank only (data, device) fails on all
            src, n_data = indexed_source(data)
            visit = order(n_data, samples, seed, sample_ids=sample_ids)
            checkpoint = _next_checkpoint()
            # saving progress: a pause after every batch (the batches of an uninterrupted run) where nothing else
            # asks for one
            planned = _segments(len(visit), stop if stop is not None or checkpoint is None else True, batch_size)
            resumed = _load_checkpoint(checkpoint, planned)
            # Every rank probes the same first points of the visit order (the same decision to use EOT).
            _, xp, yp = next(_iter_indexed(src, batch_size=8, sample_ids=visit[:8].tolist()))  # no progress
            check_batch(xp, yp, (lo, hi))
            # a structured output (a Hugging Face ModelOutput, a dict) with a 'logits' field: read it, and say so
            model, adapted = adapt_outputs(model, xp.to(dev))
            if adapted and fresh is not None:
                fresh = Logits(fresh, model.key)
            attack_model = predict_model = model
            randomized = probe_model(model, xp.to(dev)).randomized
        if randomized or eot is not None:
            draws = eot or 8
            attack_model, predict_model = EOT(model, draws=draws), EOT(model, draws=4 * draws)
        eot_model = attack_model
        full_model = None
        if precision != "fp32" or channels_last:
            if channels_last:
                extra.enter_context(_channels_last(model))
            attack_model = Fast(attack_model, precision=precision, channels_last=channels_last)
            if precision != "fp32":
                full_model = Fast(eot_model, channels_last=channels_last) if channels_last else eot_model
        run = functools.partial(_batch_counts, predict_model, attack_model, spec=spec, eps=eps, bounds=(lo, hi),
                                options=options, full_model=full_model)
        start = 0
        # progress: this rank's share of all the segments, one pass however the looks cut it
        # this rank's diagnostics: merged with the other ranks' below
        done: list[list[tuple[int, int, int, int, int]]] = []  # each segment's rows, for a checkpoint
        with diagnostics.collecting() as mine, progress.span(distributed.share_size(planned, batch_size)):
            if resumed is not None:  # what a killed run evaluated: its rows, probe points, examples, diagnostics
                kept[:], fooled[:] = _rows(resumed["kept"], dev), _rows(resumed["fooled"], dev)
                mine.extend(diagnostics.Diagnostic(d["indicator"], d["message"], dict(d["evidence"]))
                            for d in resumed["diagnostics"])
            for k, end in enumerate(planned):
                # One segment: the samples up to the next look, split over the ranks (all of them on one).
                segment = visit[start:end]
                if resumed is not None and k < len(resumed["segments"]):
                    merged = [tuple(r) for r in resumed["segments"][k]]
                else:
                    # (id, label, clean correct, robust) per sample; this rank's whole batches (one process's)
                    parts = distributed.map_share(
                        segment, lambda share, pos, start=start: _evaluate_share(
                            run, split, src, share, pos, start, batch_size, seed, dev, (lo, hi),
                            kept if checks and spec is not None else None, fooled if show else None),
                        batch_size=batch_size, where="evaluate_accuracy")
                    merged = distributed.merge(parts, end - start, batch_size)
                done.append([list(r) for r in merged])
                if checkpoint is not None and (resumed is None or k >= len(resumed["segments"])):
                    _save_checkpoint(checkpoint, {
                        "planned": planned, "segments": done,
                        "kept": [(p, x.cpu(), y.cpu(), a.cpu()) for p, x, y, a in kept],
                        "fooled": [(p, x.cpu(), y.cpu(), a.cpu()) for p, x, y, a in fooled],
                        "diagnostics": [{"indicator": d.indicator, "message": d.message, "evidence": d.evidence}
                                        for d in mine.items()]})
                for sid, label, c, a, p in merged:
                    ids_seen.append(sid)
                    labels_seen.append(label)
                    outcomes.append(a)
                    predicted.append(p)
                    clean_ok += c
                    adv_ok += a
                seen += len(merged)
                start = end
                if getattr(stop, "observe", None) is not None:  # a stop that reads the look's outcomes
                    stop.observe([(sid, a) for sid, _, _, a, _ in merged])  # type: ignore[union-attr]
                if stop is not None and stop(adv_ok, seen):
                    break
        if distributed.active():
            diags = distributed.exchange(list(mine.items()), where="evaluate_accuracy")
            for r, items in enumerate(diags):
                if r != distributed.rank():
                    found.extend(items)
            probes = distributed.exchange([(p, x.cpu(), y.cpu(), a.cpu()) for p, x, y, a in kept],
                                          where="evaluate_accuracy")
            kept = sorted((k for part in probes for k in part), key=lambda k: k[0])[:PROBE_POINTS]
            shown = distributed.exchange([(p, x.cpu(), y.cpu(), a.cpu()) for p, x, y, a in fooled],
                                         where="evaluate_accuracy")
            fooled = [(p, x.to(dev), y.to(dev), a.to(dev)) for part in shown for p, x, y, a in part]
        fell = torch.zeros(0, dtype=torch.bool, device="cpu")
        if kept:
            pos = torch.tensor([k[0] for k in kept], device="cpu")
            probe_rng = SampleRNG(seed, visit[pos], device=dev).fork(_PROBE_STREAM)
            xk, yk, ak = (torch.cat([k[i] for k in kept]).to(dev) for i in (1, 2, 3))
            fell = check_attack(predict_model, attack_model, spec, xk, yk, eps=float(eps), bounds=(lo, hi),
                                options=options, generator=probe_rng, chunk=split.limit)
            if fresh is not None:
                judge = EOT(fresh, draws=predict_model.draws) if isinstance(predict_model, EOT) else fresh
                fell |= check_stateful(judge, predict_model, ak, yk, split.limit or len(kept),
                                       functools.partial(seed_batch, seed, visit[pos]))
            fell = fell.cpu()
        # after the checks, so that a randomised model's draws there are what they were without the report's
        # examples; their own draws are seeded by their ids
        first = sorted(fooled, key=lambda k: k[0])[:EXAMPLES]
        if show and first:
            seed_batch(seed, visit[torch.tensor([k[0] for k in first], device="cpu")])
        examples = _examples(predict_model, first, visit) if show else None
        settle(found)
    # ids and labels in blocks of 256, whatever the batch size: the fingerprint robtest wrote when batches were
    # always hashed as they came, at the default batch size, so older baselines still match.
    digest = hashlib.sha256()
    ids_t = torch.tensor(ids_seen, dtype=torch.int64, device="cpu")
    labels_t = torch.tensor(labels_seen, dtype=torch.int64, device="cpu")
    for i in range(0, len(ids_seen), _FINGERPRINT_BLOCK):
        digest.update(ids_t[i:i + _FINGERPRINT_BLOCK].numpy().tobytes())
        digest.update(labels_t[i:i + _FINGERPRINT_BLOCK].numpy().tobytes())
    low, high = proportion_ci(adv_ok, seen, confidence=confidence)
    found_ids = [int(visit[p]) for p, f in zip((k[0] for k in kept), fell.tolist(), strict=True) if f]
    counter = {"robust": adv_ok, "probed": len(kept), "found": len(found_ids),
               "extrapolated": exceeds_noise(len(found_ids), len(kept)), "ids": found_ids}
    return Measurement(
        name="accuracy",
        value=adv_ok / seen,
        low=low,
        high=high,
        n=seen,
        confidence=confidence,
        context=describe_attack(attack, eps, options) + (" with EOT" if eot_model is not model else "")
        + (f" ({precision} attack)" if precision != "fp32" else "") + (" (logits from the output's 'logits' field)"
                                                                        if adapted else ""),
        details={"correct": adv_ok, "clean_accuracy": clean_ok / seen, "attack": attack or "none",
                 "eps": float(eps), "eot_draws": getattr(eot_model, "draws", 0), "sample_ids": ids_seen,
                 "outcomes": outcomes, "data_fingerprint": digest.hexdigest(),
                 "counterexamples": counter, "predictions": predicted, "labels": labels_seen,
                 "per_class": per_class(labels_seen, outcomes, confidence=confidence),
                 "flips": flip_matrix(labels_seen, predicted),
                 **({"adversarial": examples} if examples else {}),
                 "corrected": corrected(counter, seen, lambda k: proportion_ci(k, seen, confidence=confidence),
                                        confidence)},
        diagnostics=found.items(),
    )
