"""Adapters around the user's model: normalisation in front, and guards that restore what they change."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from robtest.errors import InvalidArgument, ModelStateWarning
from robtest.settings import PRECISIONS
from robtest.validation import integer

__all__ = ["AsLogits", "BPDA", "EOT", "Fast", "Normalized", "eval_mode", "on_device", "model_device"]


class Normalized(nn.Module):
    """Put a per-channel normalisation in front of ``model`` so robtest can attack pixels in [0, 1].

    ε is always measured in pixel units of the [0, 1] image; a model trained on normalised inputs is wrapped
    so the attack sees raw pixels and the model still sees what it was trained on.

    >>> import torch
    >>> m = Normalized(torch.nn.Flatten(), mean=[0.5], std=[0.25])
    >>> m(torch.ones(1, 1, 2, 2))
    tensor([[2., 2., 2., 2.]])
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.shape != std_t.shape:
            raise InvalidArgument(
                f"Normalized: expected mean and std of one length but got {mean_t.numel()} and {std_t.numel()}"
            )
        if (std_t <= 0).any():
            raise InvalidArgument(f"Normalized: expected std > 0 but got {std_t.tolist()}")
        self.model = model
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.shape[1] != self.mean.shape[1] and self.mean.shape[1] != 1:
            last = "; it looks channels-last (N, H, W, C): use x.permute(0, 3, 1, 2)" \
                if x.shape[3] == self.mean.shape[1] else ""
            raise InvalidArgument(
                f"Normalized: expected {self.mean.shape[1]} channels (one mean/std each) but got input "
                f"{tuple(x.shape)}{last}"
            )
        return self.model((x - self.mean) / self.std)


# Layers whose output depends on train/eval mode; a model in train mode without them behaves the same.
_MODE_SENSITIVE = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase, nn.AlphaDropout)


@contextlib.contextmanager
def eval_mode(model: nn.Module, *, warn: bool = True) -> Iterator[nn.Module]:
    """Evaluate in eval mode, then give every submodule back the train/eval flag it had."""
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    if warn and any(t and isinstance(m, _MODE_SENSITIVE) for m, t in modes):
        warnings.warn(
            "the model was in train mode (dropout/batch-norm active); robtest evaluates it in eval mode and "
            "restores the mode afterwards. Call model.eval() in your fixture to silence this.",
            ModelStateWarning,
            stacklevel=3,
        )
    if not any(t for _, t in modes):  # already in eval mode everywhere: nothing to change or restore
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        for m, t in modes:
            if m.training != t:
                m.training = t


def model_device(model: nn.Module) -> torch.device | None:
    """The device of the model's first parameter or buffer, or None for a parameter-free callable."""
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return None


@contextlib.contextmanager
def on_device(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Move ``model`` to ``device`` for the duration, then back where it was (no-op when already there)."""
    before = model_device(model)
    if before is None or before == device or not isinstance(model, nn.Module):
        yield model
        return
    model.to(device)
    try:
        yield model
    finally:
        model.to(before)


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N' → a torch.device, with a clear error."""
    if isinstance(spec, torch.device):
        return spec
    s = (spec or "auto").strip().lower()
    if s == "auto":
        s = "cuda" if torch.cuda.is_available() else "cpu"
    if s == "cuda" and torch.cuda.is_available():
        from robtest import distributed

        if distributed.active():  # under torchrun each rank takes its own GPU: cuda:LOCAL_RANK
            return torch.device("cuda", distributed.local_device_index() % torch.cuda.device_count())
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or s.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidArgument(f"device: {spec!r} asked for CUDA but torch sees no CUDA device; use 'auto' or 'cpu'")
        dev = torch.device(s)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidArgument(
                f"device: {spec!r} but only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0..)"
            )
        return dev
    raise InvalidArgument(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N' but got {spec!r}")


def spread_device(spec: str, worker: int) -> str:
    """The device of pytest-xdist worker ``worker`` for ``spec`` 'auto' or 'cuda': with several CUDA devices
    the workers take turns (gw0 → cuda:0, gw1 → cuda:1, ...); otherwise ``spec`` unchanged.

    >>> spread_device("cpu", 3)
    'cpu'
    """
    if spec not in ("auto", "cuda") or not torch.cuda.is_available():
        return spec
    count = torch.cuda.device_count()
    return f"cuda:{worker % count}" if count > 1 else spec


OUTPUTS = ("logits", "log_probabilities", "probabilities", "sigmoid")


def output_kind(out: torch.Tensor) -> str:
    """What a batch of model outputs looks like: logits, log-probabilities, probabilities or sigmoid values.

    >>> output_kind(torch.tensor([[0.2, 0.8], [0.5, 0.5]]))
    'probabilities'
    >>> output_kind(torch.tensor([[2.0, -1.0], [0.3, 4.0]]))
    'logits'
    """
    n, c = out.shape
    if c < 2 or n == 0:
        return "logits"
    od = out.detach().double()
    lo, hi = float(od.min()), float(od.max())
    if lo >= 0 and hi <= 1:
        if bool(torch.allclose(od.sum(1), torch.ones_like(od[:, 0]), atol=1e-3)):
            return "probabilities"
        # Per-class values in [0, 1] that are not a distribution: a sigmoid / one-vs-rest head, which (trained)
        # spreads each row from near 0 to near 1. Raw logits of an untrained model can all land in a narrow
        # band inside [0, 1], so ask for enough values and a wide spread.
        spread = (od.amax(dim=1) - od.amin(dim=1)).median()
        if od.numel() >= 16 and float(spread) >= 0.5:
            return "sigmoid"
    if hi <= 0 and bool(torch.allclose(od.exp().sum(1), torch.ones_like(od[:, 0]), atol=1e-3)):
        return "log_probabilities"
    return "logits"


def as_logits(out: torch.Tensor, kind: str) -> torch.Tensor:
    """Outputs of ``kind`` turned into logits an attack can ascend (the argmax is unchanged)."""
    if kind == "probabilities":
        return out.clamp_min(1e-30).log()
    if kind == "sigmoid":
        p = out.clamp(1e-7, 1 - 1e-7)
        return p.log() - (-p).log1p()
    return out


class AsLogits(nn.Module):
    """Declare what ``model`` returns and give attacks logits: ``outputs`` is "probabilities" (softmax rows,
    attacked as log p), "sigmoid" (one-vs-rest values in [0, 1], attacked as log(p/(1−p))) or
    "log_probabilities" (used as they are). The predicted class is unchanged.

    robtest detects probability and sigmoid outputs by itself and makes such an evaluation *suspect* until
    declared; wrapping the model declares it.

    >>> import torch
    >>> head = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Sigmoid())
    >>> AsLogits(head, outputs="sigmoid")(torch.tensor([[0.0, 2.0]]))
    tensor([[0.0000, 2.0000]])
    """

    KINDS = ("probabilities", "sigmoid", "log_probabilities")

    def __init__(self, model: nn.Module, *, outputs: str) -> None:
        super().__init__()
        if outputs not in self.KINDS:
            raise InvalidArgument(f"AsLogits: expected outputs in {', '.join(self.KINDS)} but got {outputs!r}")
        self.model, self.outputs = model, outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_logits(self.model(x), self.outputs)


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):  # type: ignore[override]
        return y

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g, None


class BPDA(nn.Module):
    """Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner, ICML 2018) around a
    non-differentiable step (rounding, JPEG, quantisation, a numpy round-trip, a denoiser): the forward pass
    runs ``fn``, the backward pass differentiates ``approx`` instead (the identity by default: the
    straight-through estimator). Put it in front of the classifier so gradient attacks see through the step:
    ``nn.Sequential(BPDA(lambda x: (x * 255).round() / 255), classifier)``.

    >>> import torch
    >>> x = torch.tensor([0.26, 0.74], requires_grad=True)
    >>> y = BPDA(torch.round)(x)
    >>> y.detach().tolist(), torch.autograd.grad(y.sum(), x)[0].tolist()
    ([0.0, 1.0], [1.0, 1.0])
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor],
                 approx: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if not callable(fn) or (approx is not None and not callable(approx)):
            raise InvalidArgument(f"BPDA: expected callables fn and approx but got {fn!r}, {approx!r}")
        self.fn, self.approx = fn, approx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.fn(x.detach())
        if self.approx is None:
            return _StraightThrough.apply(x, out)
        a = self.approx(x)
        return a + (out - a).detach()  # the value of fn, the gradient of approx


class EOT(nn.Module):
    """Expectation over Transformation (Athalye et al., ICML 2018) for a randomised model: the output is the log
    of the softmax averaged over ``draws`` forward passes, so an attack ascends the expected loss and a point
    counts as classified by its expected prediction, not by one lucky draw.

    robtest wraps a model it finds randomised (two passes of the same input differ) in ``EOT`` by itself; pass
    ``eot=N`` to an accuracy property to choose the number of draws.

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> noisy = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(4, 3)).train()
    >>> out = EOT(noisy, draws=200)(torch.ones(2, 4))
    >>> out.shape, bool(torch.allclose(out.exp().sum(1), torch.ones(2)))
    (torch.Size([2, 3]), True)
    """

    def __init__(self, model: nn.Module, *, draws: int = 8) -> None:
        super().__init__()
        integer("EOT draws", draws)
        self.model, self.draws = model, draws

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(self.model(x), dim=1) for _ in range(self.draws)])
        return torch.logsumexp(logp, dim=0) - math.log(self.draws)


class Fast(nn.Module):
    """``model`` for an attack's forward and backward passes under bf16 autocast (``precision="bf16"``) and/or
    with channels-last image batches (``channels_last``); the logits come back in fp32. The verdict's
    separate prediction should use the plain model (as :func:`robtest.evaluate.evaluate_accuracy` does), so
    that lower precision can only change which examples the attack finds, never how they are judged; and since
    an attack decides in its own precision when a point is fooled, a point it claims fooled that the plain model
    still gets right should be attacked again in full precision (``evaluate_accuracy`` does).

    >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> Fast(m, precision="bf16")(torch.rand(2, 1, 2, 2)).dtype
    torch.float32
    """

    def __init__(self, model: nn.Module, *, precision: str = "fp32", channels_last: bool = False) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise InvalidArgument(f"precision: expected one of {', '.join(PRECISIONS)} but got {precision!r}")
        self.model, self.precision, self.channels_last = model, precision, bool(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "bf16":
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                return self.model(x).float()
        return self.model(x)
