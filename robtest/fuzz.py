"""Perturbation fuzzing: find, with hypothesis, the smallest perturbation that changes the model's predictions.

Three ways in:

* :func:`assert_invariant` checks one perturbation (from :mod:`robtest.strategies`, or any callable) and raises
  :class:`InvarianceError` saying what it did in words: ``"offset +0.118 on every pixel flips 3 of 540
  points"``; with ``artifacts=`` it saves the original, perturbed and difference images and a JSON file.
  Inside ``@given`` it saves them only for hypothesis's final, minimal example.
* :func:`fuzz` runs the hypothesis search itself (no hypothesis code for the user): a strategy by name, a budget,
  the example database so known failures replay first, a seed so a rerun draws the same examples, and an
  optional gradient-guided mode. ``@pytest.mark.fuzz(strategy="offsets")`` goes through it.
* :func:`configure_hypothesis` is what ``pytest --robust`` does to hypothesis: no deadline (a model's first call
  on a GPU is slow), and ``--robust-budget`` ties ``max_examples`` to a tier of :data:`BUDGETS`.

torch loads inside the functions that need it, so the plugin can call :func:`configure_hypothesis` cheaply.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from robtest.errors import InputError, InvalidArgument, InvarianceError
from robtest.validation import integer

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from robtest.measurement import Measurement
    from robtest.strategies import Perturbation

__all__ = ["BUDGETS", "InvarianceCheck", "FuzzResult", "assert_invariant", "check_invariance",
           "fuzz", "save_artifacts", "configure_hypothesis", "restore_hypothesis", "budget_examples"]

#: max_examples per budget tier (``--robust-budget``, the ``budget=`` of ``fuzz``).
BUDGETS = {"quick": 25, "default": 100, "thorough": 500}
_MAX_SHOWN = 16  # images per artifact sheet


def budget_examples(budget: str) -> int:
    if budget not in BUDGETS:
        raise InvalidArgument(f"budget: expected one of {', '.join(BUDGETS)} but got {budget!r}")
    return BUDGETS[budget]


# -- checking one perturbation ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvarianceCheck:
    """What one perturbation did on the evaluated points."""

    description: str
    n: int  # points the property applies to (those the reference already agreed with)
    flipped: tuple[int, ...]  # indices (into the evaluated data) whose prediction changed
    excluded: int  # points left out: their clean prediction already differed from the reference
    loss: float  # mean cross-entropy of the perturbed logits against the reference (what guided mode ascends)
    transitions: tuple[tuple[int, int, int], ...] = ()  # (from, to, count), most common first
    perturbation: Any = field(default=None, repr=False, compare=False)

    @property
    def flips(self) -> int:
        return len(self.flipped)

    def message(self, what: str = "points") -> str:
        msg = f"{self.description} flips {self.flips} of {self.n} {what}"
        if self.transitions:
            shown = ", ".join(f"{a}→{b}" + (f" ×{k}" if k > 1 else "") for a, b, k in self.transitions[:4])
            more = ", ..." if len(self.transitions) > 4 else ""
            msg += f" ({shown}{more}; indices {list(self.flipped[:8])}{' ...' if self.flips > 8 else ''})"
        if self.excluded:
            msg += f"; {self.excluded} points already misclassified before the change were not counted"
        return msg


def _check_images(x: object) -> None:
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4:
        got = f"{type(x).__name__} {tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x: expected a float tensor of images (N, C, H, W) in [0, 1] but got {got}")
    if x.numel() and (float(x.min()) < -1e-5 or float(x.max()) > 1 + 1e-5):
        raise InputError(f"x: expected values in [0, 1] but got min {float(x.min()):.4g}, max {float(x.max()):.4g}; "
                         "give robtest raw pixels (wrap normalising models in robtest.Normalized)")


def _select(n: int, subset: int | Sequence[int] | torch.Tensor | None, seed: int = 0) -> torch.Tensor | None:
    """Indices of the points to evaluate: all (None), a seeded random ``k`` of them, or the ones given."""
    import torch

    if subset is None:
        return None
    if isinstance(subset, int) and not isinstance(subset, bool):
        if subset < 1:
            raise InvalidArgument(f"subset: expected a number of points >= 1 or a list of indices but got {subset}")
        if subset >= n:
            return None
        g = torch.Generator(device="cpu").manual_seed(seed)  # which points: bookkeeping on the host
        return torch.randperm(n, generator=g, device="cpu")[:subset].sort().values
    idx = torch.as_tensor(subset, device="cpu")
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise InvalidArgument(f"subset: expected a boolean mask of shape ({n},) but got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.dim() != 1 or idx.is_floating_point() or (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n)):
        raise InvalidArgument(f"subset: expected indices in 0..{n - 1} but got {subset!r}")
    return idx.long()


def _logits(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int) -> torch.Tensor:
    import torch

    from robtest.models import eval_mode

    with torch.no_grad(), eval_mode(model, warn=False):  # type: ignore[arg-type]
        return torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]) if len(x) else \
            model(x)


def check_invariance(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y_or_pred: torch.Tensor,
    perturbation: Perturbation | Callable[[torch.Tensor], torch.Tensor],
    *,
    subset: int | Sequence[int] | torch.Tensor | None = None,
    eligible: torch.Tensor | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[InvarianceCheck, torch.Tensor, torch.Tensor]:
    """Apply ``perturbation`` and compare predictions with ``y_or_pred``: (check, evaluated x, perturbed x).

    Points whose clean prediction already differs from ``y_or_pred`` are not counted (pass the clean predictions
    to count every point). ``eligible`` (a boolean mask) skips that clean forward pass when it is known. The
    model runs where ``x`` is: a model on another device is moved there for the check and given back after.
    """
    from robtest.models import on_device

    _check_images(x)
    with on_device(model, x.device):  # type: ignore[arg-type]
        return _check_invariance(model, x, y_or_pred, perturbation, subset=subset, eligible=eligible,
                                 batch_size=batch_size, seed=seed)


def _check_invariance(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y_or_pred: torch.Tensor,
                      perturbation: Perturbation | Callable[[torch.Tensor], torch.Tensor], *,
                      subset: int | Sequence[int] | torch.Tensor | None, eligible: torch.Tensor | None,
                      batch_size: int, seed: int) -> tuple[InvarianceCheck, torch.Tensor, torch.Tensor]:
    import torch
    import torch.nn.functional as F

    ref = torch.as_tensor(y_or_pred, device=x.device)
    if ref.shape != (x.shape[0],) or ref.is_floating_point():
        raise InputError(f"y_or_pred: expected integer labels or predictions of shape ({x.shape[0]},) but got "
                         f"{ref.dtype} {tuple(ref.shape)}")
    idx = _select(x.shape[0], subset, seed)
    if idx is not None:
        idx = idx.to(x.device)
        x, ref = x[idx], ref[idx]
        eligible = None if eligible is None else eligible.to(x.device)[idx]
    if eligible is None:
        eligible = _logits(model, x, batch_size).argmax(1) == ref
    xp = perturbation.apply(x) if hasattr(perturbation, "apply") else perturbation(x)  # type: ignore[union-attr]
    if not isinstance(xp, torch.Tensor) or xp.shape != x.shape:
        got = tuple(xp.shape) if isinstance(xp, torch.Tensor) else type(xp).__name__
        raise InputError(f"perturbation: expected a batch of shape {tuple(x.shape)} back but got {got}")
    logits = _logits(model, xp, batch_size)
    pred = logits.argmax(1)
    flipped = (pred != ref) & eligible
    pos = flipped.nonzero().flatten()
    original = pos if idx is None else idx[pos]
    loss = float(F.cross_entropy(logits[eligible].float(), ref[eligible])) if bool(eligible.any()) else 0.0
    trans = Counter(zip(ref[pos].tolist(), pred[pos].tolist(), strict=True))
    shape = tuple(x.shape)
    desc = perturbation.describe(shape) if hasattr(perturbation, "describe") else getattr(
        perturbation, "__name__", repr(perturbation))
    check = InvarianceCheck(
        description=desc, n=int(eligible.sum()), flipped=tuple(int(i) for i in original.tolist()),
        excluded=int((~eligible).sum()), loss=loss,
        transitions=tuple((a, b, k) for (a, b), k in trans.most_common()), perturbation=perturbation,
    )
    return check, x, xp


def _hypothesis_final() -> bool | None:
    """None outside a hypothesis test; else whether this is the final replay of the minimal failing example."""
    try:
        from hypothesis.control import current_build_context, currently_in_test_context
    except ImportError:  # pragma: no cover
        return None
    if not currently_in_test_context():
        return None
    return bool(getattr(current_build_context(), "is_final", True))


def _test_name() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.rsplit(" (", 1)[0] if current else "robtest"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:120] or "robtest"


def save_artifacts(x: torch.Tensor, x_perturbed: torch.Tensor, check: InvarianceCheck, directory: str | Path,
                   name: str | None = None, *, points: Sequence[int] | None = None) -> Path:
    """Write ``original.png``, ``perturbed.png``, ``difference.png`` and ``failure.json`` into
    ``directory/<name>/`` (name: the current test's id); returns that folder.

    The sheets show ``points`` (rows of ``x``; default the flipped ones), at most 16, enlarged to at least 64
    pixels. In ``difference.png`` mid-grey is no change, lighter is brighter; the JSON gives the scale.
    """
    import torch
    import torch.nn.functional as F
    from torchvision.utils import save_image

    folder = Path(directory) / _slug(name or _test_name())
    folder.mkdir(parents=True, exist_ok=True)
    chosen = list(check.flipped if points is None else points)[:_MAX_SHOWN] or list(range(min(_MAX_SHOWN, len(x))))
    sel = torch.as_tensor(chosen, dtype=torch.long, device=x.device)
    a, b = x[sel].detach().float().cpu(), x_perturbed[sel].detach().float().cpu()
    scale = float((b - a).abs().max()) or 1.0
    diff = 0.5 + 0.5 * (b - a) / scale
    factor = max(1, math.ceil(64 / max(1, min(a.shape[-2:]))))

    def big(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=factor, mode="nearest") if factor > 1 else t

    files = {"original": "original.png", "perturbed": "perturbed.png", "difference": "difference.png"}
    for key, t in (("original", a), ("perturbed", b), ("difference", diff)):
        save_image(big(t), folder / files[key], nrow=8, padding=2, pad_value=0.5)
    perturbation = check.perturbation
    record = {
        "test": name or _test_name(),
        "perturbation": perturbation.to_record() if hasattr(perturbation, "to_record") else repr(perturbation),
        "description": check.description,
        "flips": check.flips, "n": check.n, "excluded": check.excluded,
        "flipped": list(check.flipped), "shown": sel.tolist(),
        "transitions": [{"from": f, "to": t, "count": k} for f, t, k in check.transitions],
        "difference_scale": scale, "files": files,
    }
    (folder / "failure.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def assert_invariant(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y_or_pred: torch.Tensor,
    perturbation: Perturbation | Callable[[torch.Tensor], torch.Tensor],
    *,
    subset: int | Sequence[int] | torch.Tensor | None = None,
    max_flips: int = 0,
    artifacts: str | Path | None = None,
    batch_size: int = 256,
    seed: int = 0,
    eligible: torch.Tensor | None = None,
    what: str = "points",
) -> InvarianceCheck:
    """Check that ``perturbation`` changes at most ``max_flips`` predictions; raise :class:`InvarianceError` if not.

    ``y_or_pred`` is what the predictions are compared with: labels (points the model already gets wrong are
    not counted) or the model's clean predictions (every point counts). ``subset`` is a number of points (a
    ``seed``-ed random choice) or their indices. With ``artifacts`` (a folder), a failure saves its images
    there; inside ``@given`` only the final, minimal example does.

    >>> import torch
    >>> from robtest.strategies import Offset
    >>> model = lambda x: torch.stack([0.4 - x.mean((1, 2, 3)), x.mean((1, 2, 3)) - 0.4], 1)   # bright → class 1
    >>> x = torch.full((3, 1, 4, 4), 0.3)
    >>> assert_invariant(model, x, torch.zeros(3, dtype=torch.long), Offset(0.05)).flips
    0
    >>> assert_invariant(model, x, torch.zeros(3, dtype=torch.long), Offset(0.2))
    Traceback (most recent call last):
    ...
    robtest.errors.InvarianceError: offset +0.200 on every pixel flips 3 of 3 points (0→1 ×3; indices [0, 1, 2])
    """
    __tracebackhide__ = True  # pytest shows the user's line and this message, not robtest's internals
    integer("max_flips", max_flips, low=0)
    check, xs, xp = check_invariance(model, x, y_or_pred, perturbation, subset=subset, eligible=eligible,
                                     batch_size=batch_size, seed=seed)
    if check.flips <= max_flips:
        return check
    folder = None
    msg = check.message(what)
    if max_flips:
        msg += f" (at most {max_flips} allowed)"
    if artifacts is not None and _hypothesis_final() is not False:
        sub = _select(x.shape[0], subset, seed)
        points = None
        if sub is not None:  # check.flipped indexes the whole data; the sheets show rows of the subset
            local = {int(v): i for i, v in enumerate(sub.tolist())}
            points = [local[i] for i in check.flipped]
        folder = save_artifacts(xs, xp, check, artifacts, points=points)
        msg += f"\nimages: {folder}"
    raise InvarianceError(msg, check, folder)


# -- the search ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FuzzResult:
    """The outcome of :func:`fuzz`; reads like a property verdict (``passed``, ``message()``, ``to_record()``)."""

    strategy: str
    passed: bool
    max_flips: int
    examples: int  # model evaluations, database replay + generation + shrinking
    max_examples: int
    first_failure: int | None  # at which evaluation the first failure came (1: replayed from the database)
    minimal: Any  # the smallest failing perturbation hypothesis found, None when it passed
    check: InvarianceCheck | None
    artifacts: str | None
    guided: bool = False
    n: int = 0
    confidence: float = 0.95

    @property
    def measurement(self) -> Measurement:
        from robtest.measurement import Measurement
        from robtest.stats import proportion_ci

        k = self.check.flips if self.check else 0
        lo, hi = proportion_ci(k, self.n, confidence=self.confidence)
        how = f"{self.strategy}{', guided' if self.guided else ''}, {self.examples} examples"
        found = f"smallest failing: {self.check.description}" if self.check else "no failing perturbation"
        return Measurement("flip rate", k / self.n if self.n else 0.0, lo, hi, self.n, self.confidence,
                           context=f"({how}) {found}",
                           details={"examples": self.examples, "first_failure": self.first_failure,
                                    "artifacts": self.artifacts})

    def message(self) -> str:
        how = (f"fuzz {self.strategy}{' (guided)' if self.guided else ''}: {self.examples} examples "
               f"(budget {self.max_examples})")
        if self.passed:
            if self.check is None:
                return f"{how}: no perturbation changed a prediction"
            return f"{how}: the worst changed {self.check.flips} predictions, at most {self.max_flips} allowed"
        assert self.check is not None
        msg = f"{how}: smallest failing perturbation found: {self.check.message()}"
        if self.max_flips:
            msg += f" (at most {self.max_flips} allowed)"
        if self.first_failure == 1:
            msg += "; a failure saved in the example database failed again first"
        elif self.first_failure is not None:
            msg += f"; first failure at example {self.first_failure}, then shrunk"
        if self.artifacts:
            msg += f"\nimages: {self.artifacts}"
        return msg

    def to_record(self) -> dict[str, Any]:
        return {"property": self.property, "measurement": self.measurement.to_record(),
                "threshold": self.max_flips, "comparison": "<=", "threshold_text": f"<= {self.max_flips} flips",
                "rule": "any", "verdict": "pass" if self.passed else "FAIL",
                "perturbation": self.minimal.to_record() if hasattr(self.minimal, "to_record") else None}

    property: ClassVar[str] = "fuzz"  # last: the name would shadow the builtin decorator above


_PROFILE_DB = object()


def _database(database: Any) -> Any:
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    if database is not _PROFILE_DB:
        return database
    db = settings.default.database
    if db is None:  # e.g. a derandomize=True profile; failures should still replay
        # hypothesis's own default location, named by its documented path rather than its private helpers.
        db = DirectoryBasedExampleDatabase(os.path.join(os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY", ".hypothesis"),
                                                        "examples"))
    return db


def fuzz(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y_or_pred: torch.Tensor,
    strategy: str | Any,
    *,
    options: Mapping[str, Any] | None = None,
    max_examples: int | None = None,
    budget: str = "default",
    max_flips: int = 0,
    guided: bool = False,
    subset: int | Sequence[int] | torch.Tensor | None = None,
    seed: int = 0,
    database: Any = _PROFILE_DB,
    key: str | None = None,
    artifacts: str | Path | None = None,
    batch_size: int = 256,
    confidence: float = 0.95,
) -> FuzzResult:
    """Search ``strategy`` for a perturbation that changes more than ``max_flips`` predictions; shrink it.

    ``strategy`` is a name from :data:`robtest.strategies.STRATEGIES` (built with ``options``) or a hypothesis
    strategy of perturbations. The search evaluates at most ``max_examples`` new examples (default: the
    ``budget`` tier of :data:`BUDGETS`) plus the shrinking, draws the same examples for the same ``seed``, and
    keeps failures in the hypothesis example ``database`` (default: the current profile's, else
    ``.hypothesis/examples``) under ``key``, so the next run tries the known failure first.

    ``guided=True`` ascends the loss with hypothesis's ``target()`` and, for ``linf_perturbations`` and
    ``l2_perturbations``, also draws steps along each point's loss gradient (its sign for L∞) on its largest
    pixels: directions random patterns almost never hit; those steps shrink like the others.

    >>> import torch
    >>> model = lambda x: torch.stack([0.4 - x.mean((1, 2, 3)), x.mean((1, 2, 3)) - 0.4], 1)
    >>> x = torch.full((4, 1, 4, 4), 0.3)
    >>> r = fuzz(model, x, torch.zeros(4, dtype=torch.long), "offsets", database=None, max_examples=30)
    >>> r.passed, r.minimal.describe()
    (False, 'offset +0.102 on every pixel')
    """
    import torch
    from hypothesis import HealthCheck, Phase, Verbosity, given, target
    from hypothesis import seed as hseed
    from hypothesis import settings as hsettings
    from hypothesis.strategies import SearchStrategy, one_of

    from robtest import strategies as rst
    from robtest.models import on_device

    n_max = budget_examples(budget) if max_examples is None else max_examples
    integer("max_examples", n_max)
    integer("max_flips", max_flips, low=0)
    opts = dict(options or {})
    if isinstance(strategy, str):
        name, strat = strategy, rst.get_strategy(strategy, **opts)
    elif isinstance(strategy, SearchStrategy):
        name, strat = getattr(strategy, "__name__", None) or repr(strategy)[:40], strategy
    else:
        raise InvalidArgument(f"strategy: expected a name ({', '.join(sorted(rst.STRATEGIES))}) or a hypothesis "
                              f"strategy but got {type(strategy).__name__}")
    _check_images(x)
    # the model runs where the points are: moved there for the search and given back after
    with on_device(model, x.device):  # type: ignore[arg-type]
        ref = torch.as_tensor(y_or_pred, device=x.device)
        idx = _select(x.shape[0], subset, seed)
        if idx is not None:
            idx = idx.to(x.device)
            x, ref = x[idx], ref[idx]
        eligible = _logits(model, x, batch_size).argmax(1) == ref

        if guided and name in ("linf_perturbations", "l2_perturbations"):
            from robtest.attacks._driver import loss_grad
            from robtest.models import eval_mode

            with eval_mode(model, warn=False), torch.enable_grad():  # type: ignore[arg-type]
                _, g = loss_grad(model, x, ref, "ce")
            norm = "linf" if name == "linf_perturbations" else "l2"
            strat = one_of(strat, rst.directed_perturbations(direction=g.detach(), eps=opts["eps"], norm=norm,
                                                             label="loss gradient"))

        state: dict[str, Any] = {"calls": 0, "first": None}

        def fuzz_one(perturbation: Any) -> None:
            state["calls"] += 1
            check, xs, xp = check_invariance(model, x, ref, perturbation, eligible=eligible, batch_size=batch_size)
            if guided:
                target(check.loss, label="cross-entropy against the reference")
            if check.flips > max_flips:
                if state["first"] is None:
                    state["first"] = state["calls"]
                folder = None
                if artifacts is not None and _hypothesis_final():
                    folder = save_artifacts(xs, xp, check, artifacts)
                raise InvarianceError(check.message(), check, folder)

        # The database key: one entry per test and strategy setting, not one for every fuzz() call.
        fuzz_one._hypothesis_internal_add_digest = (  # type: ignore[attr-defined]
            f"{key or _test_name()}|{name}|{sorted(opts.items())}|{guided}|{max_flips}".encode())
        db = _database(database)
        every_phase = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

        def search(phases: tuple[Phase, ...]) -> InvarianceError | None:
            test = hsettings(
                database=db, max_examples=n_max, deadline=None, derandomize=False, phases=phases,
                suppress_health_check=list(HealthCheck), report_multiple_bugs=False, verbosity=Verbosity.quiet,
                print_blob=False,
            )(hseed(seed)(given(strat)(fuzz_one)))
            try:
                test()
            except InvarianceError as exc:
                return exc
            return None

        failure = search(every_phase)
        if failure is not None and state["first"] == 1 and db is not None:
            # Hypothesis does not shrink a failure replayed from the database again; but the model may have changed
            # since it was saved, and a smaller perturbation may fail now. Search afresh (same seed) and keep what
            # that finds; the replayed failure stands when the fresh search finds none.
            again = search(tuple(p for p in every_phase if p is not Phase.reuse))
            failure = again or failure
        if failure is not None:
            check = failure.check
            return FuzzResult(name, False, max_flips, state["calls"], n_max, state["first"], check.perturbation, check,
                              None if failure.artifacts is None else str(failure.artifacts), guided, check.n,
                              confidence)
        return FuzzResult(name, True, max_flips, state["calls"], n_max, None, None, None, None, guided,
                          int(eligible.sum()), confidence)


# -- hypothesis settings under pytest --robust ------------------------------------------------------------------

def configure_hypothesis(budget: str | None = None) -> str | None:
    """Load a profile derived from the current one with no deadline (and the ``budget`` tier's max_examples).

    Returns the name of the profile it replaced (for :func:`restore_hypothesis`), or None when nothing changed.
    """
    from hypothesis import settings

    current = settings.default
    changes: dict[str, Any] = {}
    if current.deadline is not None:
        changes["deadline"] = None
    if budget is not None:
        changes["max_examples"] = budget_examples(budget)
    if not changes:
        return None
    previous = getattr(settings, "_current_profile", None) or "default"
    settings.register_profile("robtest", parent=current, **changes)
    settings.load_profile("robtest")
    return previous


def restore_hypothesis(previous: str | None) -> None:
    if previous is not None:
        from hypothesis import settings

        settings.load_profile(previous)
