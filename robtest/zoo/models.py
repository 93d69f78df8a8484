"""Reference architectures of the four papers: inputs in the model's input space, outputs logits (N, classes).

Images are (N, C, H, W) in [0, 1]. Every model is small enough to train in seconds on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "BoundedReLU",
    "QuantAct",
    "QuantConv2d",
    "QuantLinear",
    "RBFNetwork",
    "galloway_cnn",
    "mlp",
    "quantize",
    "quantized_softmax_regression",
    "small_cnn",
    "softmax_regression",
    "spheres_mlp",
]

Activation = Callable[[], nn.Module]


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


class BoundedReLU(nn.Module):
    """``min(max(x, 0), bound)`` (Zantedeschi et al. 2017, Z1): a unit's output moves by at most ``bound``.

    >>> import torch
    >>> BoundedReLU(1.0)(torch.tensor([-2.0, 0.5, 3.0]))
    tensor([0.0000, 0.5000, 1.0000])
    """

    def __init__(self, bound: float = 1.0) -> None:
        super().__init__()
        if not bound > 0:
            raise ValueError(f"bound: expected a number > 0 but got {bound!r}")
        self.bound = float(bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0.0, self.bound)

    def extra_repr(self) -> str:
        return f"bound={self.bound:g}"


def quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` on a symmetric grid of at most ``2**bits`` levels, with a straight-through gradient.

    1 bit: ``mean|w| · sign(w)`` (binarized weights, Courbariaux & Bengio 2016). ``k`` bits: ``2**k − 1``
    levels evenly spaced in ``[−max|w|, max|w|]`` (zero included). The backward pass is the identity
    (Bengio et al. 2013's straight-through estimator), so the float weights keep learning.

    >>> import torch
    >>> quantize(torch.tensor([-1.0, -0.2, 0.1, 0.7]), 2)
    tensor([-1.,  0.,  0.,  1.])
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits: expected an integer >= 1 but got {bits!r}")
    if bits == 1:
        q = w.abs().mean() * torch.where(w >= 0, 1.0, -1.0)
    else:
        levels = 2 ** (bits - 1) - 1
        scale = w.abs().max().clamp_min(1e-12)
        q = torch.round(w / scale * levels) / levels * scale
    return w + (q - w).detach()


class QuantLinear(nn.Linear):
    """A linear layer whose forward pass uses ``bits``-bit weights (float bias); trains through the STE."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, bits: int = 1) -> None:
        super().__init__(in_features, out_features, bias=bias)
        quantize(torch.zeros(1), bits)  # validates bits
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, quantize(self.weight, self.bits), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bits={self.bits}"


class QuantConv2d(nn.Conv2d):
    """A convolution whose forward pass uses ``bits``-bit weights; trains through the STE."""

    def __init__(self, *args: object, bits: int = 1, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        quantize(torch.zeros(1), bits)
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, quantize(self.weight, self.bits), self.bias)


class QuantAct(nn.Module):
    """Activations clipped to [0, 1] and rounded to ``2**bits`` levels, straight-through gradient inside [0, 1]."""

    def __init__(self, bits: int = 2) -> None:
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
            raise ValueError(f"bits: expected an integer >= 1 but got {bits!r}")
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(0.0, 1.0)
        n = 2 ** self.bits - 1
        return x + (torch.round(x * n) / n - x).detach()


def softmax_regression(in_shape: tuple[int, ...] = (1, 8, 8), classes: int = 10) -> nn.Module:
    """Multinomial logistic regression (Goodfellow et al. 2015's shallow softmax model)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(_numel(in_shape), classes))


def quantized_softmax_regression(in_shape: tuple[int, ...] = (1, 8, 8), classes: int = 2, *, bits: int = 1
                                 ) -> nn.Module:
    """Logistic regression with ``bits``-bit weights (Galloway et al. 2018, Table 1)."""
    return nn.Sequential(nn.Flatten(), QuantLinear(_numel(in_shape), classes, bits=bits))


def mlp(in_shape: tuple[int, ...] = (1, 8, 8), classes: int = 10, hidden: tuple[int, ...] = (256, 256), *,
        activation: Activation = nn.ReLU) -> nn.Module:
    """A multilayer perceptron; ``activation`` builds each hidden nonlinearity (e.g. ``BoundedReLU``)."""
    d = _numel(in_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    for h in hidden:
        layers += [nn.Linear(d, h), activation()]
        d = h
    layers.append(nn.Linear(d, classes))
    return nn.Sequential(*layers)


def small_cnn(in_channels: int = 1, classes: int = 10, width: int = 32, *, activation: Activation = nn.ReLU
              ) -> nn.Module:
    """Two 3×3 conv layers and a linear readout; works on 8×8 and larger inputs (average pool to 4×4)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), activation(),
        nn.Conv2d(width, 2 * width, 3, padding=1), activation(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(2 * width * 16, classes),
    )


def galloway_cnn(in_channels: int = 1, classes: int = 10, n_f: int = 8, *, input_size: int = 28,
                 activation: Activation = nn.ReLU) -> nn.Module:
    """The three-layer CNN of Galloway et al. 2018, Table 2 (after Madry et al.'s CIFAR-10 baseline):

    conv 8×8 stride 2 SAME with ``n_f`` filters, conv 6×6 stride 1 VALID with ``2·n_f``, conv 5×5 stride 1
    VALID with ``2·n_f``, ReLU after each, linear readout. SAME padding is TensorFlow's (odd totals pad
    more on the bottom/right). On 28×28 inputs the maps are 14×14 → 9×9 → 5×5; needs ``input_size`` ≥ 20.

    >>> import torch
    >>> galloway_cnn(n_f=4)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    out1 = math.ceil(input_size / 2)
    pad = max((out1 - 1) * 2 + 8 - input_size, 0)
    out3 = out1 - 6 + 1 - 5 + 1
    if out3 < 1:
        raise ValueError(f"input_size: expected at least 20 for the Table 2 CNN but got {input_size!r}")
    return nn.Sequential(
        nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)),
        nn.Conv2d(in_channels, n_f, 8, stride=2), activation(),
        nn.Conv2d(n_f, 2 * n_f, 6, stride=1), activation(),
        nn.Conv2d(2 * n_f, 2 * n_f, 5, stride=1), activation(),
        nn.Flatten(), nn.Linear(2 * n_f * out3 * out3, classes),
    )


class RBFNetwork(nn.Module):
    """A shallow RBF network (Goodfellow et al. 2015, G5/G6): one centre per class, one-vs-rest outputs.

    Class ``c`` fires with probability ``p_c(x) = exp(−β_c · ‖x − μ_c‖² / d)``, unnormalised across classes, so
    an input far from every centre gets low probability for all of them. ``forward`` returns the one-vs-rest
    log-odds ``log(p_c / (1 − p_c))`` (logits for attacks and ``binary_cross_entropy_with_logits``);
    :meth:`probabilities` returns ``p_c``. A softmax over these logits is *not* the model's confidence.

    Train with ``train_classifier(..., loss="ovr", reinit=True)``, which first sets each centre to its class
    mean (:meth:`init_centres`).
    """

    def __init__(self, in_shape: tuple[int, ...] = (1, 8, 8), classes: int = 10, beta: float = 4.0) -> None:
        super().__init__()
        d = _numel(in_shape)
        self.centres = nn.Parameter(torch.rand(classes, d) * 0.1)
        self.log_beta = nn.Parameter(torch.full((classes,), math.log(beta)))
        self.d = d

    @torch.no_grad()
    def init_centres(self, x: torch.Tensor, y: torch.Tensor) -> RBFNetwork:
        """Each centre to the mean of its class in ``(x, y)`` (a class without samples keeps its centre); on the
        centres' device, without a host sync."""
        c = self.centres
        flat = x.flatten(1).to(c.device, c.dtype)
        y = y.to(c.device)
        sums = torch.zeros_like(c).index_add_(0, y, flat)
        counts = torch.zeros(c.shape[0], device=c.device, dtype=c.dtype).index_add_(0, y, torch.ones_like(flat[:, 0]))
        c.copy_(torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c))
        return self

    def log_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(x.flatten(1), self.centres).pow(2) / self.d
        return -self.log_beta.exp() * d2

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_probabilities(x).exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = self.log_probabilities(x).clamp(max=-1e-6)
        return logp - torch.log(-torch.expm1(logp))


def spheres_mlp(dim: int = 2, hidden: tuple[int, ...] = (64, 64), *, weight_bits: int | None = None,
                act_bits: int | None = None) -> nn.Module:
    """The concentric-spheres MLP (Gilmer et al. 2018; Galloway et al. 2018, W5): full precision by default,
    or ``weight_bits``-bit weights and ``act_bits``-bit activations (Galloway's 1-bit/2-bit model)."""
    layers: list[nn.Module] = []
    d = dim
    for h in hidden:
        layers.append(nn.Linear(d, h) if weight_bits is None else QuantLinear(d, h, bits=weight_bits))
        if act_bits is None:
            layers.append(nn.ReLU())
        else:
            layers += [nn.BatchNorm1d(h), QuantAct(act_bits)]
        d = h
    layers.append(nn.Linear(d, 2))
    return nn.Sequential(*layers)
