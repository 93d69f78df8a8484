"""The checks behind the indicators of attack failure (Pintor et al. 2022; AutoAttack's flags; Carlini et al.
2019's checklist), each cheap by default. They report into :mod:`robtest.diagnostics`.

Two kinds:

* :func:`probe_model`, before an evaluation, on a few inputs: is the model randomised (two passes differ),
  does it compute gradients inside forward?
* :func:`check_attack`, after an evaluation, on a few of the points the attack left robust: are they fooled at
  a smaller ε (whose ball lies inside), by a stronger run of the same attack, by a gradient-free attack, and can
  an attack whose ε covers the whole box drive them to chance? Each of these is a failure of the evaluated
  attack, not of the model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robtest.diagnostics import isolated, report

__all__ = ["ModelProbe", "probe_model", "check_attack", "check_stateful", "settle", "snapshot", "PROBE_POINTS"]

#: How many robust points the after-evaluation checks re-attack.
PROBE_POINTS = 32
#: Square's budget in the gradient-free check (forward passes per point).
SQUARE_QUERIES = 200
#: The stronger rerun of an iterative attack: this many times its steps, and one more restart.
STRONGER_STEPS = 2


@dataclass(frozen=True)
class ModelProbe:
    randomized: bool
    max_difference: float


@contextlib.contextmanager
def _grad_watch(model: object) -> Iterator[dict[str, int]]:
    """Count gradient computations inside a forward pass run under ``torch.no_grad``: submodules entered with
    gradients re-enabled, and calls of ``torch.autograd.grad`` / ``Tensor.backward``."""
    seen = {"enabled": 0, "calls": 0}
    hooks = []
    if isinstance(model, nn.Module):
        def pre(_m: nn.Module, _inp: Any) -> None:
            seen["enabled"] += int(torch.is_grad_enabled())

        hooks = [m.register_forward_pre_hook(pre) for m in model.modules()]
    grad, backward = torch.autograd.grad, torch.Tensor.backward

    def counted_grad(*a: Any, **k: Any) -> Any:
        seen["calls"] += 1
        return grad(*a, **k)

    def counted_backward(*a: Any, **k: Any) -> Any:
        seen["calls"] += 1
        return backward(*a, **k)

    torch.autograd.grad, torch.Tensor.backward = counted_grad, counted_backward  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        torch.autograd.grad, torch.Tensor.backward = grad, backward  # type: ignore[method-assign]
        for h in hooks:
            h.remove()


def probe_model(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> ModelProbe:
    """Two forward passes of the same inputs (the model already in eval mode): report ``randomized`` when they
    differ beyond float noise, and ``gradients_in_forward`` when forward computes gradients."""
    x = x[:8]  # few: any difference counts, and a batch that needs splitting for memory is not probed whole
    from robtest.attacks._driver import first_forward

    with _grad_watch(model) as seen:
        a = first_forward(model, x)  # the first call of the model: data mistakes come back as InputError
    with torch.no_grad():
        b = model(x)
    if seen["enabled"] or seen["calls"]:
        report("gradients_in_forward", f"forward ran {seen['calls']} gradient computation(s) and "
               f"{seen['enabled']} submodule call(s) with gradients enabled inside torch.no_grad", stacklevel=4,
               calls=seen["calls"], modules=seen["enabled"])
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return ModelProbe(False, 0.0)
    diff = float((a.double() - b.double()).abs().max())
    scale = float(a.double().abs().max()) + 1e-12
    # Kernels that are not bitwise deterministic (some GPU reductions) differ by rounding only.
    randomized = diff > 1e-4 * scale
    if randomized:
        changed = int((a.argmax(1) != b.argmax(1)).sum())
        report("randomized", f"two forward passes of the same {x.shape[0]} inputs differed by up to {diff:.3g} "
               f"and changed {changed} predictions", stacklevel=4, max_difference=float(f"{diff:.4g}"),
               changed_predictions=changed)
    else:
        _check_grad_mode(model, x, a, scale)
    return ModelProbe(randomized, diff)


def _check_grad_mode(model: Callable, x: torch.Tensor, a: torch.Tensor, scale: float) -> None:
    """A deterministic model must compute the same function with gradients on (what the attack differentiates)
    as off (what predicts): a transformation applied only in one mode hides the predicting function."""
    try:
        with torch.enable_grad():
            c = model(x.detach().clone().requires_grad_(True))
    except Exception:  # a forward that cannot run with gradients: the attack itself says so
        return
    if not isinstance(c, torch.Tensor) or c.shape != a.shape:
        return
    diff = float((c.detach().double() - a.double()).abs().max())
    if diff > 1e-4 * scale:
        changed = int((c.detach().argmax(1) != a.argmax(1)).sum())
        report("grad_mode_forward", f"forward with gradients enabled differed from forward without by up to "
               f"{diff:.3g} on the same {x.shape[0]} inputs and changed {changed} predictions", stacklevel=5,
               max_difference=float(f"{diff:.4g}"), changed_predictions=changed)


def _still_correct(model: Callable, x: torch.Tensor, y: torch.Tensor, chunk: int) -> torch.Tensor:
    from robtest.attacks._driver import predict

    return torch.cat([predict(model, x[i:i + chunk]).argmax(1) for i in range(0, x.shape[0], chunk)]) == y


def _chunked(fn: Callable[..., torch.Tensor], model: Callable, x: torch.Tensor, y: torch.Tensor, chunk: int,
             **kw: Any) -> torch.Tensor:
    """Run an attack in chunks no larger than the evaluation found to fit in memory, its diagnostics isolated."""
    gen = kw.pop("generator", None)
    with isolated():
        # a per-sample stream (robtest.rng.SampleRNG) is cut with the chunk; a torch.Generator goes on as it is
        return torch.cat([fn(model, x[i:i + chunk], y[i:i + chunk], generator=gen.rows(slice(i, i + chunk))
                             if hasattr(gen, "rows") else gen, **kw) for i in range(0, x.shape[0], chunk)])


def _correct_after(model: Callable, fn: Callable[..., torch.Tensor], attack_model: Callable, x: torch.Tensor,
                   y: torch.Tensor, chunk: int, **kw: Any) -> torch.Tensor:
    """Which points ``model`` still classifies correctly after ``fn`` attacked them (in chunks). Under torchrun
    each rank attacks its share of the points (each drawing from its own stream) and the ranks exchange the
    answers (whole chunks per rank), so every rank reaches the conclusion of one process."""
    from robtest import distributed

    gen = kw.get("generator")
    if not (distributed.active() and hasattr(gen, "rows")):
        return _still_correct(model, _chunked(fn, attack_model, x, y, chunk, **kw), y, chunk)
    def attack(_: torch.Tensor, share: torch.Tensor) -> list[int]:
        if not share.numel():
            return []
        share = share.to(x.device)
        xs, ys = x[share], y[share]
        adv = _chunked(fn, attack_model, xs, ys, chunk, **{**kw, "generator": gen.rows(share)})
        return _still_correct(model, adv, ys, chunk).to(torch.int8).tolist()

    # whole chunks per rank, the chunks one process attacks: the same answers, bit for bit
    everyone = torch.arange(x.shape[0], device="cpu")
    parts = distributed.map_share(everyone, attack, batch_size=chunk, where="the indicator checks")
    merged = distributed.merge(parts, x.shape[0], chunk)
    return torch.tensor(merged, dtype=torch.bool, device=y.device)


def check_attack(model: Callable[[torch.Tensor], torch.Tensor], attack_model: Callable[[torch.Tensor], torch.Tensor],
                 spec: Any, x: torch.Tensor, y: torch.Tensor, *, eps: float, bounds: tuple[float, float],
                 options: dict[str, Any], generator: torch.Generator, chunk: int | None = None) -> torch.Tensor:
    """Look for evidence that ``spec`` under-attacked the points ``x`` it left robust at ``eps``; return which of
    them a check fooled inside the ε-ball (a bool per point): real counterexamples, re-predicted by ``model``.

    ``attack_model`` is what the attack ran on (the model, or its EOT wrapper); ``model`` predicts. All runs are
    seeded from ``generator`` and go in chunks of at most ``chunk`` points (what fitted in memory). The counting
    indicators are reported with their counts whenever a check fools a point; :func:`settle` keeps those whose
    count is more than noise once the evaluation's counts are summed.
    """
    from robtest.attacks import available_attacks, get_attack
    from robtest.attacks._norms import get_norm

    found = torch.zeros(x.shape[0], dtype=torch.bool, device=y.device)
    if x.shape[0] == 0 or eps <= 0:
        return found
    m = x.shape[0]
    chunk = chunk or m
    norm = get_norm(options.get("norm", "linf"))
    lo, hi = bounds
    kw = {"bounds": bounds}
    fork = generator.fork if hasattr(generator, "fork") else (lambda _: generator)  # one stream per check

    # A smaller ball lies inside the larger: whatever fools a point at ε/2 fools it at ε.
    half = _correct_after(model, spec.fn, attack_model, x, y, chunk, eps=eps / 2, generator=fork(1), **kw,
                          **options)
    found |= ~half
    k = int((~half).sum())
    if k:
        report("eps_not_monotone", f"{k} of {m} points left robust at ε={eps:g} were fooled at ε={eps / 2:g}",
               warn=False, fooled=k, of=m)

    # With ε covering the whole box any image is reachable: a working gradient attack drives accuracy to chance.
    # (Its examples lie outside the ε-ball: evidence about the gradients, not counterexamples.)
    pgd = get_attack("pgd").fn
    full = (hi - lo) * (1.0 if norm.name == "linf" else math.sqrt(x[0].numel()))
    classes = _logits_width(model, x)
    wide = _correct_after(model, pgd, attack_model, x, y, chunk, eps=full, norm=norm.name, steps=10, loss="margin",
                          generator=fork(2), **kw)
    left = int(wide.sum())
    chance = max(0.2, 2.0 / max(classes, 1))
    if left > chance * m and left >= 2:
        report("unbounded_not_chance", f"PGD-10 with ε={full:g} (the whole box) left {left} of {m} points correct "
               f"(chance is {1 / max(classes, 1):.2f})", stacklevel=4, correct=left, of=m)

    if spec.name == "auto":  # the ensemble runs a stronger cascade and Square itself, and reports what it finds
        return found
    opts = spec.options
    if "steps" not in opts:  # single-step attacks (FGSM, step-l.l.) measure themselves, not a worst case
        return found
    strong = dict(options)
    strong["steps"] = STRONGER_STEPS * int(options.get("steps", _default(spec, "steps")))
    if "restarts" in opts:
        strong["restarts"] = int(options.get("restarts", _default(spec, "restarts"))) + 1
    out = _correct_after(model, spec.fn, attack_model, x, y, chunk, eps=eps, generator=fork(3), **kw, **strong)
    found |= ~out
    k = int((~out).sum())
    if k:
        report("incomplete_optimization", f"{strong['steps']} steps" + (f" × {strong['restarts']} restarts" if
               "restarts" in strong else "") + f" fooled {k} of {m} points the evaluated attack left robust",
               warn=False, fooled=k, of=m)
    if "square" in available_attacks():
        sq = _correct_after(model, get_attack("square").fn, attack_model, x, y, chunk, eps=eps, norm=norm.name,
                            queries=SQUARE_QUERIES, generator=fork(4), **kw)
        found |= ~sq
        k = int((~sq).sum())
        if k:
            report("gradient_free_wins", f"Square ({SQUARE_QUERIES} queries) fooled {k} of {m} points the "
                   "gradient attack left robust", warn=False, fooled=k, of=m)
    return found


def settle(found: Any, *, warn: bool = True) -> bool:
    """Keep the counting indicators of a collector whose summed count is more than noise
    (:func:`robtest.stats.exceeds_noise`) and warn for those; drop the others. Return whether one is kept (the
    unprobed points are then extrapolated at the probed rate)."""
    import warnings

    from robtest.diagnostics import COUNTING, INDICATORS
    from robtest.errors import EvaluationWarning
    from robtest.stats import exceeds_noise

    kept = False
    for d in found.items():
        if d.indicator not in COUNTING:
            continue
        k, m = int(d.evidence.get("fooled", 0)), int(d.evidence.get("of", 0))
        if not exceeds_noise(k, m):
            found.discard(d.indicator)
            continue
        kept = True
        if warn:
            warnings.warn(f"{d.indicator}: {k} of {m} points: {INDICATORS[d.indicator]}", EvaluationWarning,
                          stacklevel=4)
    return kept


def snapshot(model: Any) -> Any:
    """A copy of ``model`` as it is before the evaluation's first query, sharing its parameters (no extra memory
    for weights): what a user who deploys the model gets. None when the model cannot be copied."""
    import copy

    if not isinstance(model, nn.Module):
        return None
    memo = {id(p): p for p in model.parameters()}
    try:
        return copy.deepcopy(model, memo)
    except Exception:  # a model that cannot be copied (open handles, compiled code) is not checked
        return None


def check_stateful(fresh: Any, model: Any, x_adv: torch.Tensor, y: torch.Tensor, chunk: int, *,
                   randomized: bool) -> torch.Tensor:
    """Predict the final examples ``x_adv`` (which ``model`` classified correctly) on ``fresh``, a copy of the model
    taken before the first query, then on ``model`` again. A model whose answers depend on the queries it has seen
    (a cache of past inputs, a memory) answers otherwise than its fresh copy: ``stateful`` fires when more points
    than noise differ (in their logits for a deterministic model, in their class for a randomised one). Return which
    of them ``fresh`` gets wrong: counterexamples for the model as deployed."""
    from robtest.attacks._driver import predict
    from robtest.stats import exceeds_noise

    a = torch.cat([predict(fresh, x_adv[i:i + chunk]) for i in range(0, x_adv.shape[0], chunk)])
    b = torch.cat([predict(model, x_adv[i:i + chunk]) for i in range(0, x_adv.shape[0], chunk)])
    wrong = a.argmax(1) != y
    if randomized:
        differ = wrong | (b.argmax(1) != y)
    else:
        scale = a.double().abs().amax(1) + 1e-12
        differ = (a.double() - b.double()).abs().amax(1) > 1e-4 * scale
    k, m = int(differ.sum()), x_adv.shape[0]
    if exceeds_noise(k, m):
        report("stateful", f"a copy of the model taken before the first query answered {k} of the {m} final "
               f"examples otherwise than the queried model ({int(wrong.sum())} misclassified)", stacklevel=4,
               disagreeing=k, of=m)
    return wrong


def _default(spec: Any, name: str) -> Any:
    import inspect

    return inspect.signature(spec.fn).parameters[name].default


def _logits_width(model: Callable, x: torch.Tensor) -> int:
    from robtest.attacks._driver import predict

    return predict(model, x[:1]).shape[1]
