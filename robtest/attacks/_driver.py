"""The one place that owns an attack's invariants.

``run_attack`` checks the inputs, puts the model in eval mode (restoring each submodule's mode afterwards),
runs the algorithm with gradients enabled, clips to the box and verifies that every returned example lies in
the ε-ball. Algorithms only compute; they never repeat these steps. ``predict`` is the separate forward pass
that accuracy is computed from.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable

import torch
import torch.nn.functional as F

from robtest.attacks._norms import Norm, get_norm, per_sample
from robtest.diagnostics import report
from robtest.errors import (
    AttackInvariantError,
    InputError,
    InvalidArgument,
    ModelOutputError,
)
from robtest.models import as_logits, eval_mode, model_device, output_kind

Bounds = tuple[float, float]
LOSSES = ("ce", "margin", "dlr")


def check_bounds(bounds: Bounds) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise InvalidArgument(f"bounds: expected a pair (low, high) of numbers but got {bounds!r}") from None
    if not lo < hi:
        raise InvalidArgument(f"bounds: expected low < high but got {bounds!r}")
    return lo, hi


def check_batch(x: object, y: object, bounds: Bounds) -> None:
    """Shapes, dtypes and the box: the errors a user meets first, in their terms."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = f"{type(x).__name__} {tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x: expected a float tensor of shape (N, ...) with N samples but got {got}"
                         f"{_x_hint(x)}")
    _check_label_form(x, y)
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise InputError(
            f"y: expected shape ({x.shape[0]},), one label per sample of x {tuple(x.shape)}, but got {tuple(y.shape)}"
        )
    if y.numel() and int(y.min()) < 0:
        raise InputError(f"y: expected labels >= 0 but got {int(y.min())}")
    lo, hi = bounds
    if x.numel():
        xmin, xmax = float(x.min()), float(x.max())
        if not (math.isfinite(xmin) and math.isfinite(xmax)):
            raise InputError("x: expected finite values but got NaN or infinity in the input batch")
        tol = 1e-5 * (hi - lo)
        if xmin < lo - tol or xmax > hi + tol:
            hint = ""
            if xmin < lo:
                hint = (" This looks like normalised data: give robtest raw pixels and wrap the model in "
                        "robtest.Normalized(model, mean, std), so ε stays in pixel units.")
            elif xmax > 2 * hi and hi <= 1:
                hint = " This looks like 0-255 pixels: divide by 255 (or declare bounds=(0, 255))."
            raise InputError(
                f"x: expected values in the box [{lo:g}, {hi:g}] but got min {xmin:.4g}, max {xmax:.4g}.{hint}"
            )


def check_device(model: object, x: torch.Tensor, where: str = "x") -> None:
    """The model's parameters and ``x`` must be on one device (a function without a ``device`` option moves
    neither); the error says which is where and what to do, instead of torch's "mat1 is on cpu..."."""
    dev = model_device(model)  # type: ignore[arg-type]
    if dev is None:
        return
    same = dev.type == x.device.type and (dev.index is None or x.device.index is None or dev.index == x.device.index)
    if not same:
        raise InputError(f"{where}: expected a tensor on the model's device {dev} but got one on {x.device}; put both "
                         f"on one device (x.to({str(dev)!r}) or model.to({str(x.device)!r})), or use "
                         "robtest.evaluate_accuracy / the robust fixture, which move both to their device")


def _x_hint(x: object) -> str:
    if isinstance(x, torch.Tensor) and x.dtype == torch.uint8:
        return "; this looks like 0-255 pixels: use x.float() / 255 (ε is in [0, 1] pixel units)"
    if isinstance(x, torch.Tensor) and x.dim() >= 2 and not x.is_floating_point():
        return "; use x.float() (and divide by 255 if these are 0-255 pixels)"
    if type(x).__module__ == "numpy":
        return "; use torch.from_numpy(x).float()"
    return ""


def _check_label_form(x: torch.Tensor, y: object) -> None:
    """Labels must be class indices (N,) of an integer dtype; one-hot rows and float indices say how to fix."""
    if not isinstance(y, torch.Tensor):
        raise InputError(f"y: expected an integer tensor of class labels but got {type(y).__name__}; "
                         "use torch.as_tensor(y)")
    n = x.shape[0]
    if y.dim() == 2 and y.shape[0] == n and y.shape[1] > 1 and y.numel():
        yd = y.detach().double()
        if bool(((yd == 0) | (yd == 1)).all()) and bool((yd.sum(1) == 1).all()):
            raise InputError(f"y: expected class indices of shape ({n},) but got one-hot labels of shape "
                             f"{tuple(y.shape)}; use y.argmax(dim=1) (not y.long(), which keeps the one-hot rows)")
        if y.is_floating_point() and bool((yd >= 0).all()) and bool(torch.allclose(yd.sum(1), yd.new_ones(n))):
            raise InputError(f"y: expected class indices of shape ({n},) but got soft labels (probabilities) of "
                             f"shape {tuple(y.shape)}; use y.argmax(dim=1)")
    if y.dtype == torch.bool:
        raise InputError("y: expected an integer tensor of class labels but got tensor torch.bool; use y.long()")
    if y.is_floating_point() or y.is_complex():
        whole = y.is_floating_point() and bool((y == y.round()).all())
        fix = "use y.long()" if whole else "these are not whole numbers: class labels are indices 0..C-1"
        raise InputError(f"y: expected an integer tensor of class labels but got tensor {y.dtype}; {fix}")
    if y.dim() == 2 and y.shape == (n, 1):
        raise InputError(f"y: expected shape ({n},), one label per sample of x {tuple(x.shape)}, but got "
                         f"{tuple(y.shape)}; use y.view(-1)")


def check_eps(eps: float | torch.Tensor, norm: Norm, bounds: Bounds, x: torch.Tensor) -> None:
    """ε must be a finite non-negative number in pixel units of the box."""
    if isinstance(eps, torch.Tensor):
        if eps.dim() > 1 or (eps.dim() == 1 and eps.shape[0] != x.shape[0]):
            raise InvalidArgument(
                f"eps: expected a number or a tensor of shape ({x.shape[0]},) but got {tuple(eps.shape)}"
            )
        big = float(eps.max()) if eps.numel() else 0.0
        bad = eps.numel() and (not bool(torch.isfinite(eps).all()) or float(eps.min()) < 0)
        shown = f"tensor with min {float(eps.min()):.4g}" if eps.numel() else "empty tensor"
    else:
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real):  # numpy scalars are Real too
            raise InvalidArgument(f"eps: expected a non-negative number but got {eps!r}")
        big = float(eps)
        bad, shown = not (math.isfinite(big) and big >= 0), repr(eps)
    if bad:
        raise InvalidArgument(f"eps: expected a finite number >= 0 but got {shown}")
    lo, hi = bounds
    width = hi - lo
    limit = width if norm.name == "linf" else width * math.sqrt(x[0].numel())
    if big > limit:
        hint = f" did you mean {big:g}/255 = {big / 255:.4g}?" if big >= 1 and width <= 1 else ""
        raise InvalidArgument(
            f"eps: {norm.symbol} ε={big:g} is larger than the box [{lo:g}, {hi:g}] allows ({limit:.4g}); ε is in "
            f"pixel units of the box, not normalised or 0-255 units;{hint}"
        )
    if norm.name == "linf" and big >= 0.5 * width:
        report("large_eps", f"L∞ ε={big:g} in the box [{lo:g}, {hi:g}]", stacklevel=5, eps=big)


def check_logits(out: object, x: torch.Tensor, y: torch.Tensor) -> str:
    """What the model returned must be finite (N, C) outputs with C above every label; returns their kind
    (see :func:`output_kind`), reporting probabilities and sigmoid heads as indicators."""
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(
            f"model output: expected a tensor of logits (N, C) but got {type(out).__name__}; "
            "name where the logits are with robtest.Logits(model, key=...) (a dict or ModelOutput key, an attribute "
            "or a tuple index)"
        )
    n = x.shape[0]
    if out.dim() != 2 or out.shape[0] != n:
        raise ModelOutputError(
            f"model output: expected logits of shape ({n}, num_classes) for input {tuple(x.shape)} "
            f"but got {tuple(out.shape)}"
        )
    if not bool(torch.isfinite(out).all()):
        k = int((~torch.isfinite(out)).any(dim=1).sum())
        raise ModelOutputError(
            f"model output: expected finite logits but {k} of {n} rows hold NaN or infinity; check the model and "
            "the input range"
        )
    c = out.shape[1]
    if y.numel() and int(y.max()) >= c:
        raise InputError(f"y: expected labels in 0..{c - 1} (the model has {c} outputs) but got {int(y.max())}")
    kind = output_kind(out)
    if kind == "probabilities":
        report("probability_outputs", stacklevel=5)
    elif kind == "sigmoid":
        report("sigmoid_outputs", f"all {out.numel()} outputs lie in [0, 1] without summing to 1", stacklevel=5)
    return kind


class CheckedModel:
    """Calls the model for an attack. The first call checks the output (the check syncs the device) and learns
    its kind: probabilities and sigmoid values are turned into logits so that the attack's loss is not flat.
    Every input gradient the attack takes passes :meth:`observe`, which counts zero, non-finite and tiny
    gradients on the device; :meth:`finish` reports them once, after the attack (one host sync)."""

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, *,
                 box_width: float = 1.0) -> None:
        self.model, self.y = model, y
        self.kind: str | None = None
        self.box_width = box_width
        self._counts: torch.Tensor | None = None  # zero, non-finite, tiny, observed (point-steps)
        self.no_gradient = 0  # point-steps whose output had no graph back to the input

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.kind is None:
            self.kind = check_logits(out, x, self.y)
        return as_logits(out, self.kind)

    def observe(self, g: torch.Tensor, loss: torch.Tensor, live: torch.Tensor | None = None) -> None:
        """Count zero, non-finite and negligible gradients (on the device, no sync); ``live`` (a mask) leaves
        out points an attack has frozen but not yet dropped from its batch."""
        flat = g.detach().flatten(1)
        finite = torch.isfinite(flat).all(dim=1)
        gmax = flat.abs().amax(dim=1)
        zero = gmax == 0
        # To first order the loss can change by at most width·‖g‖₁ across the whole box: if that is a
        # negligible part of the loss, the attack has nothing to follow.
        tiny = finite & ~zero & (self.box_width * flat.abs().sum(dim=1) < 1e-5 * loss.detach().abs())
        if live is not None:
            zero, finite, tiny = zero & live, finite | ~live, tiny & live
            seen = live.sum()
        else:
            seen = torch.tensor(g.shape[0], device=g.device)
        c = torch.stack([zero.sum(), (~finite).sum(), tiny.sum(), seen])
        self._counts = c if self._counts is None else self._counts + c

    def finish(self) -> None:
        if self.no_gradient:
            report("no_gradient", "the model's output has no gradient with respect to its input", stacklevel=5,
                   point_steps=self.no_gradient)
            self.no_gradient = 0
        if self._counts is None:
            return
        zero, nonfinite, tiny, seen = (int(v) for v in self._counts.tolist())
        self._counts = None
        if zero:
            report("zero_gradients", f"exactly zero input gradient at {zero} of {seen} point-steps", stacklevel=5,
                   point_steps=zero, of=seen)
        if nonfinite:
            report("nonfinite_gradients", f"NaN or infinite input gradient at {nonfinite} of {seen} point-steps",
                   stacklevel=5, point_steps=nonfinite, of=seen)
        if tiny:
            report("tiny_gradients", f"negligible input gradient at {tiny} of {seen} point-steps", stacklevel=5,
                   point_steps=tiny, of=seen)


def _dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    # Difference of Logits Ratio (Croce & Hein, ICML 2020): the margin divided by a spread of the top logits, so
    # that it does not change when the logits are scaled (a softmax-saturating scale cannot hide the gradient).
    c = logits.shape[1]
    need = 3 if target is None else 4
    if c < need:
        kind, spread = ("DLR", "z_π1 − z_π3") if target is None else ("targeted DLR", "z_π1 − (z_π3 + z_π4)/2")
        raise InvalidArgument(
            f"loss: expected a model with at least {need} classes for the {kind} loss (it divides by {spread}) "
            f"but the model has {c} outputs; use loss='margin' or loss='ce'"
        )
    top = logits.topk(need, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if target is None:
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        return (other - z_y) / (top[:, 0] - top[:, 2] + 1e-12)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return (z_t - z_y) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, targeted: bool = False, *,
                    target: torch.Tensor | None = None) -> torch.Tensor:
    """The quantity an attack ascends, one value per sample. ``loss="dlr"`` with ``target`` (classes (N,)) is
    the targeted DLR loss of Croce & Hein, with ``y`` still the true labels."""
    if loss == "dlr":
        v = _dlr(logits, y, target)
    elif target is not None:
        raise InvalidArgument(f"target: only the 'dlr' loss takes a target, not {loss!r}")
    elif loss == "ce":
        v = F.cross_entropy(logits, y, reduction="none")
    elif loss == "margin":
        z_y = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        v = other - z_y
    else:
        raise InvalidArgument(f"loss: expected one of {LOSSES} but got {loss!r}")
    return -v if targeted else v


def _total_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, targeted: bool,
                target: torch.Tensor | None = None) -> torch.Tensor:
    if loss == "ce" and target is None:
        # The fused sum has the same input gradient, bit for bit, without the per-sample vector and its sum.
        total = F.cross_entropy(logits, y, reduction="sum")
        return -total if targeted else total
    return per_sample_loss(logits, y, loss, targeted, target=target).sum()


#: Steps between two compactions of the early-stopping loop on an accelerator. Dropping the fooled points from
#: the batch needs their number on the host: a device-to-host sync that stalls a GPU's queue. On the CPU it costs
#: nothing and every step compacts; on a GPU fooled points are recorded and frozen by masks on the device, and
#: dropped every COMPACT_EVERY steps (one sync per COMPACT_EVERY steps instead of one per step). A point's
#: trajectory and the example it returns are the same either way: only how long a fooled point stays in the
#: batch changes.
COMPACT_EVERY = 8


def compact_every(device: torch.device) -> int:
    """How many steps an early-stopping attack loop goes between compactions on ``device``."""
    return 1 if device.type == "cpu" else COMPACT_EVERY


def loss_grad(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str,
    targeted: bool = False,
    *,
    check_masking: bool = True,
    target: torch.Tensor | None = None,
    live: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and one backward w.r.t. the input only: (logits, ∇x loss). Parameters get no .grad.

    When ``f`` is the driver's :class:`CheckedModel` every gradient is observed for masking (zero, tiny or
    non-finite values, on any point at any step); ``check_masking=False`` skips that for a caller that knows.
    ``target`` is for the targeted DLR loss (see :func:`per_sample_loss`). ``live`` (a mask) observes only
    the points an attack still moves.
    """
    x = x.detach().requires_grad_(True)
    logits = f(x)
    g = None
    if logits.requires_grad:
        (g,) = torch.autograd.grad(_total_loss(logits, y, loss, targeted, target), x, allow_unused=True)
    if g is None:
        # The forward cut the input off the graph (no_grad, .detach(), a numpy round-trip): no gradient exists.
        if isinstance(f, CheckedModel):
            f.no_gradient += x.shape[0]  # reported once, after the attack
        else:
            report("no_gradient", "the model's output has no gradient with respect to its input", stacklevel=5)
        return logits.detach(), torch.zeros_like(x)
    if check_masking and isinstance(f, CheckedModel):
        with torch.no_grad():
            f.observe(g, per_sample_loss(logits.detach(), y, loss, targeted, target=target), live)
    return logits.detach(), g


def run_attack(
    core: Callable[..., torch.Tensor],
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    norm: str = "linf",
    bounds: Bounds = (0.0, 1.0),
    loss: str = "ce",
    **options: object,
) -> torch.Tensor:
    """Validate, run ``core`` in eval mode with gradients on, clip to the box, verify the ε-ball."""
    lo, hi = check_bounds(bounds)
    nrm = get_norm(norm)
    gen = options.get("generator")
    if isinstance(gen, torch.Generator) and isinstance(x, torch.Tensor) and gen.device.type != x.device.type:
        raise InvalidArgument(f"generator: expected a torch.Generator on x's device {x.device} but got one on "
                              f"{gen.device}; make it there (torch.Generator(device=x.device)) or pass a "
                              "robtest.rng.SampleRNG")
    check_batch(x, y, (lo, hi))
    check_device(model, x)
    check_eps(eps, nrm, (lo, hi), x)
    if loss not in LOSSES:
        raise InvalidArgument(f"loss: expected one of {LOSSES} but got {loss!r}")
    x = x.detach()
    y = y.to(x.device)
    e = per_sample(eps, x)
    with eval_mode(model), torch.enable_grad():
        f = CheckedModel(model, y, box_width=hi - lo)
        x_adv = core(f, x, y, eps=e, norm=nrm, lo=lo, hi=hi, loss=loss, **options)
        f.finish()
    x_adv = x_adv.detach().clamp_(lo, hi)
    verify_ball(x_adv, x, e, nrm, (lo, hi))
    return x_adv


def ball_tolerance(eps: torch.Tensor, norm: Norm, bounds: Bounds, x: torch.Tensor) -> torch.Tensor:
    """How far past ε a returned example may measure from rounding alone: storing x + δ in x's dtype moves each
    coordinate of δ by up to one ulp of the box's largest value (√d of them in L2)."""
    ulp = torch.finfo(x.dtype).eps * max(abs(bounds[0]), abs(bounds[1]), 1.0)
    per_coordinate = math.sqrt(x[0].numel()) if norm.name == "l2" else 1.0
    return eps * 1e-5 + 1e-6 + ulp * per_coordinate


def verify_ball(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, norm: Norm, bounds: Bounds = (0.0, 1.0)
                ) -> None:
    size = norm.size(x_adv - x)
    e = eps.flatten()
    over = size > e + ball_tolerance(e, norm, bounds, x)
    if bool(over.any()):
        i = int(over.nonzero()[0])
        raise AttackInvariantError(
            f"attack returned {int(over.sum())} example(s) outside the {norm.symbol} ε-ball (first: sample {i}, "
            f"size {float(size[i]):.6g} > ε {float(e[i]):.6g}); this is a robtest bug, please report it"
        )


@torch.no_grad()
def predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits from a plain forward pass (the separate pass accuracy is computed from), in eval mode."""
    with eval_mode(model, warn=False):
        return model(x)


_CHANNELS = re.compile(r"expected input\[[\d, ]+\] to have (\d+) channels, but got (\d+) channels")
_DTYPE_WORDS = ("dtype", "scalar type", "type (", "should be the same")


def input_error(model: object, x: torch.Tensor, err: RuntimeError) -> InputError | None:
    """torch's error from the model's first forward on ``x``, in the user's terms, when it is one robtest knows:
    channels-last images given to a convolution, or data of another float dtype than the model's weights."""
    said = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    found = _CHANNELS.search(str(err))
    if found:
        want, got = int(found.group(1)), int(found.group(2))
        last = x.dim() - 1
        if x.dim() in (3, 4) and x.shape[last] == want:
            order = "(0, 3, 1, 2)" if x.dim() == 4 else "(0, 2, 1)"
            layout = "(N, H, W, C)" if x.dim() == 4 else "(N, L, C)"
            return InputError(
                f"x: expected channels-first inputs with {want} channel(s) in dim 1 but got shape {tuple(x.shape)}, "
                f"which looks channels-last {layout}; use x.permute{order} (torch said: {said})")
        return InputError(f"x: the model expects {want} input channel(s) in dim 1 but got {got} in shape "
                          f"{tuple(x.shape)}; give it images of shape (N, {want}, ...) (torch said: {said})")
    params = getattr(model, "parameters", None)
    if callable(params) and any(w in str(err) for w in _DTYPE_WORDS):
        dtypes = sorted({str(p.dtype) for p in params() if p.is_floating_point()})
        if dtypes and str(x.dtype) not in dtypes:
            want = " and ".join(dtypes)
            to = dtypes[0].removeprefix("torch.")
            return InputError(
                f"x: expected data of the model's dtype {want} but got {x.dtype}; convert the data (x.to(torch.{to})) "
                f"or the model (model.to({x.dtype})) (torch said: {said})")
    return None


def first_forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """:func:`predict` for the first batch a model sees: torch errors caused by the data (a channel or dtype
    mismatch) come back as :class:`~robtest.errors.InputError` saying what to change."""
    try:
        return predict(model, x)
    except RuntimeError as err:
        translated = input_error(model, x, err)
        if translated is None:
            raise
    raise translated from None
