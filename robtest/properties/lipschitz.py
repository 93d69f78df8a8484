"""How fast the model's output can change with its input (Zantedeschi et al. 2017, Z1 and Z4).

Three estimates, from cheapest to strongest claim:

* ``"sensitivity"``: local loss sensitivity ``ℓ = mean_x ‖∂J(x, y)/∂x‖₂`` (Zantedeschi's Table 3 metric).
* ``"local"``: the empirical local Lipschitz constant of the logits, per sample the largest
  ``‖f(x')−f(x)‖₂/‖x'−x‖₂`` found by gradient ascent on the sphere of radius ``radius`` around ``x`` (a power
  iteration of the Jacobian for a locally linear model; the ball is not clipped to the box). Reported as the
  mean over samples; ``details["max"]`` is the largest. Search results: lower bounds of the true constants.
* ``"global"``: a certified upper bound, the product of proven upper bounds of per-layer spectral norms (exact
  SVD for linear layers; for convolutions the exact dense norm when small, else the exact norm of the strided
  circular convolution that contains the layer, see :func:`conv_norm_fft`) for sequential models built from
  the layers in ``SUPPORTED``; anything else is refused with a message naming the layer.

Means carry a seeded bootstrap interval; the global bound is a number, not an estimate (zero-width interval).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.models import Normalized, eval_mode, on_device, resolve_device
from robtest.properties._common import flat_norm, input_shape, map_samples
from robtest.stats import bootstrap_ci
from robtest.validation import choice, number, positive_int

__all__ = ["ESTIMATES", "SUPPORTED", "conv_norm_bound", "conv_norm_dense", "conv_norm_fft", "global_lipschitz_bound",
           "lipschitz_estimate", "local_lipschitz", "loss_sensitivity"]

ESTIMATES = ("local", "sensitivity", "global")
_ONE = (nn.ReLU, nn.Identity, nn.Flatten, nn.Dropout, nn.Tanh, nn.Hardtanh, nn.Softplus, nn.ReLU6)
SUPPORTED = ("Linear", "Conv1d", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU", "ELU",
             "Tanh", "Sigmoid", "Hardtanh", "Softplus", "Identity", "Flatten", "Dropout", "MaxPool2d (stride = kernel)",
             "AvgPool2d (stride = kernel)", "Sequential", "robtest.Normalized")


def _per_sample(model: torch.nn.Module, data: object, fn: Any, *, batch_size: int, samples: int | None, seed: int,
                bounds: tuple[float, float], device: str | torch.device, where: str) -> np.ndarray:
    """``fn(x, y, rng)`` per sample over the seeded subset in the data's order (sharded under torchrun)."""
    dev = resolve_device(device)
    with on_device(model, dev), eval_mode(model), torch.enable_grad():
        rows = map_samples(model, data, lambda x, y, rng: (None, {"v": fn(x, y, rng).detach().double()}),
                           batch_size=batch_size, samples=samples, seed=seed, bounds=bounds, device=dev, where=where)
    return rows["v"].numpy()


def _mean_measurement(name: str, v: np.ndarray, confidence: float, seed: int, context: str,
                      details: dict[str, Any]) -> Measurement:
    low, high = bootstrap_ci(v, np.mean, confidence=confidence, seed=seed)
    return Measurement(name, float(v.mean()), low, high, n=int(v.size), confidence=confidence, context=context,
                       details={"max": float(v.max()), **details,
                                # per sample, in the seeded subset's data order: a baseline pairs them
                                "per_sample": [round(float(a), 7) for a in v], "per_sample_statistic": "mean"})


def loss_sensitivity(model: torch.nn.Module, data: object, *, bounds: tuple[float, float] = (0.0, 1.0),
                     batch_size: int = 256, samples: int | None = None, seed: int = 0,
                     device: str | torch.device = "auto", confidence: float = 0.95) -> Measurement:
    """Local loss sensitivity ``mean ‖∂J/∂x‖₂`` of the cross-entropy (Zantedeschi et al. 2017, Table 3).

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible weights and data
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> data = (torch.rand(30, 1, 2, 2), torch.randint(0, 2, (30,)))
    >>> m = loss_sensitivity(model, data, device="cpu")
    >>> m.name, m.n, m.low <= m.value <= m.high
    ('loss sensitivity', 30, True)
    """
    def grad_norm(x: torch.Tensor, y: torch.Tensor, rng: Any) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
        return flat_norm(g, 2)

    v = _per_sample(model, data, grad_norm, batch_size=batch_size, samples=samples, seed=seed, bounds=bounds,
                    device=device, where="loss_sensitivity")
    return _mean_measurement("loss sensitivity", v, confidence, seed, "‖∂J/∂x‖₂ of the cross-entropy", {})


def local_lipschitz(model: torch.nn.Module, data: object, *, radius: float = 0.05, steps: int = 30,
                    bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 256, samples: int | None = None,
                    seed: int = 0, device: str | torch.device = "auto", confidence: float = 0.95) -> Measurement:
    """Empirical local Lipschitz constant of the logits (L2), per sample by ``steps`` of gradient ascent.

    For a linear model every sample's constant is the spectral norm of the weight:

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible weights and data
    >>> lin = torch.nn.Linear(6, 3)
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), lin)
    >>> m = local_lipschitz(model, (torch.rand(8, 1, 2, 3), torch.zeros(8, dtype=torch.long)), device="cpu")
    >>> abs(m.details["max"] - float(torch.linalg.matrix_norm(lin.weight.detach(), 2))) < 1e-3
    True
    """
    radius = number("radius", radius, low=0, strict_low=True)
    steps = positive_int("steps", steps)
    def ratio(x: torch.Tensor, y: torch.Tensor, rng: Any) -> torch.Tensor:
        with torch.no_grad():
            fx = model(x)
        d = rng.randn(tuple(x.shape), device=x.device)  # sample i's start: its own stream (seed, i)
        d = radius * d / flat_norm(d, 2).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        best = torch.zeros(x.shape[0], device=x.device, dtype=fx.dtype)
        for _ in range(steps):
            d = d.detach().requires_grad_(True)
            diff = model(x + d) - fx
            num = diff.flatten(1).norm(dim=1)
            best = torch.maximum(best, (num / flat_norm(d, 2)).detach())
            (g,) = torch.autograd.grad(0.5 * (diff ** 2).sum(), d)
            gn = flat_norm(g, 2).view(-1, *([1] * (x.dim() - 1)))
            # Power iteration on JᵀJ: go where the output difference grows fastest, back on the sphere.
            d = torch.where(gn > 0, radius * g / gn.clamp_min(1e-30), d.detach())
        with torch.no_grad():
            best = torch.maximum(best, flat_norm(model(x + d) - fx, 2) / flat_norm(d, 2))
        return best

    v = _per_sample(model, data, ratio, batch_size=batch_size, samples=samples, seed=seed, bounds=bounds,
                    device=device, where="local_lipschitz")
    return _mean_measurement("local Lipschitz", v, confidence, seed, f"of the logits (L2, radius {radius:g})",
                             {"radius": radius, "steps": steps})


def _layers(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _layers(child, f"{prefix}{name}.")
        return out
    return [(prefix.rstrip("."), module)]


def _power_iteration(op: Any, x_shape: tuple[int, ...], iterations: int, gen: torch.Generator,
                     device: torch.device) -> float:
    # drawn on the host and moved: the same start on every device
    v = torch.randn((1, *x_shape), generator=gen, device="cpu").to(device)
    v = v / v.norm()
    sigma = 0.0
    for _ in range(iterations):
        v = v.detach().requires_grad_(True)
        u = op(v)
        (g,) = torch.autograd.grad(0.5 * (u ** 2).sum(), v)  # AᵀA v for a linear op without bias
        sigma = float(u.detach().norm())
        n = g.norm()
        if float(n) == 0:
            return 0.0
        v = g / n
    return max(sigma, float(op(v.detach()).detach().norm()))


def _bias_free(layer: nn.Module) -> Any:
    def op(v: torch.Tensor) -> torch.Tensor:
        return layer._conv_forward(v, layer.weight, None)  # type: ignore[operator]

    return op


# Relative margin added to every computed norm: it covers float64 rounding in the FFT and the eigen/singular value
# solvers (errors of order 1e-13 relative at these sizes), so the product stays an upper bound of the exact one.
_MARGIN = 1 + 1e-9
# A convolution whose dense matrix has at most this many entries gets its exact norm from that matrix.
_DENSE_ENTRIES = 2 ** 22


def _conv_as_2d(layer: nn.Module, in_shape: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """The layer's kernel as a dense (groups expanded, dilation spread out) float64 2-D kernel (C_out, C_in, k1, k2),
    with its strides and the padded input size; a Conv1d is a Conv2d on inputs of height 1."""
    w = layer.weight.detach().double()  # type: ignore[union-attr]
    mode = getattr(layer, "padding_mode", "zeros")
    if mode != "zeros":
        raise InvalidArgument(f"global Lipschitz bound: expected convolutions with padding_mode='zeros' but got "
                              f"{mode!r}; use estimate='local' or 'sensitivity' for this model")
    one_d = w.dim() == 3
    if one_d:
        w, in_shape = w.unsqueeze(2), (in_shape[0], 1, *in_shape[1:])
    groups = layer.groups  # type: ignore[attr-defined]
    if groups > 1:
        co, cig = w.shape[:2]
        full = w.new_zeros(co, cig * groups, *w.shape[2:])
        step = co // groups
        for g in range(groups):
            full[g * step:(g + 1) * step, g * cig:(g + 1) * cig] = w[g * step:(g + 1) * step]
        w = full

    def per_dim(v: Any, dummy: int) -> tuple[int, int]:
        t = (v,) if isinstance(v, int) else tuple(v)
        return (dummy, t[0]) if one_d else (t[0], t[-1])  # type: ignore[return-value]

    dil, stride = per_dim(layer.dilation, 1), per_dim(layer.stride, 1)  # type: ignore[attr-defined]
    if any(d > 1 for d in dil):
        spread = w.new_zeros(*w.shape[:2], dil[0] * (w.shape[2] - 1) + 1, dil[1] * (w.shape[3] - 1) + 1)
        spread[:, :, ::dil[0], ::dil[1]] = w
        w = spread
    pad = layer.padding  # type: ignore[attr-defined]
    if pad == "valid":
        total = (0, 0)
    elif pad == "same":
        total = (w.shape[2] - 1, w.shape[3] - 1)
    else:
        p = per_dim(pad, 0)
        total = (2 * p[0], 2 * p[1])
    padded = (in_shape[1] + total[0], in_shape[2] + total[1])
    return w, stride, padded


def conv_norm_fft(layer: nn.Module, in_shape: tuple[int, ...]) -> float:
    """A proven upper bound on the L2 operator norm of a bias-free Conv1d/Conv2d on inputs of ``in_shape``.

    Zero padding is an isometry onto the padded input, and the unpadded ("valid") strided correlation on it is a
    row selection of the strided *circular* correlation on a periodic grid of size ``N ≥`` the padded size
    (``N`` a multiple of the stride), because no output reads across the wrap. Row selection cannot increase
    the norm, so ``‖conv‖ ≤ ‖S·C_N‖``. The circular correlation ``C_N`` is block-diagonalised by the DFT, and
    subsampling by the strides folds the ``s₁s₂`` aliased frequencies together: ``‖S·C_N‖ = max_ν
    ‖[K̂(ν + jN/s)]_j‖₂ / √(s₁s₂)`` over the coarse frequencies ν, with ``K̂`` the kernel's DFT, each a small
    ``C_out × s₁s₂C_in`` matrix whose norm is computed exactly (the largest eigenvalue of its smaller Gram
    matrix, float64). The bound is the exact norm of the circular layer; it exceeds the zero-padded layer's
    by a factor that shrinks as the input grows (measured 1.00–1.23 on inputs of 5 to 20 pixels a side,
    1.008 on 28×28; ``tests/properties/test_lipschitz.py``).
    """
    w, (s1, s2), (p1, p2) = _conv_as_2d(layer, in_shape)
    dev = w.device if w.device.type == "cuda" else torch.device("cpu")
    w = w.to(dev)
    co, ci, k1, k2 = w.shape
    n1, n2 = s1 * math.ceil(max(p1, k1) / s1), s2 * math.ceil(max(p2, k2) / s2)
    m1, m2 = n1 // s1, n2 // s2
    kf = torch.fft.fft(w.to(torch.complex128), n=n2, dim=3)  # (co, ci, k1, n2)
    a = torch.arange(k1, device=dev, dtype=torch.float64)
    best = 0.0
    chunk = max(1, 2 ** 23 // max(1, co * ci * s1 * n2))  # coarse frequency rows per pass, bounded memory
    for start in range(0, m1, chunk):
        nu = torch.arange(start, min(m1, start + chunk), device=dev, dtype=torch.float64)
        rows = nu[:, None] + torch.arange(s1, device=dev, dtype=torch.float64)[None, :] * m1  # (c, s1)
        e = torch.exp(-2j * math.pi * rows[..., None] * a / n1)  # (c, s1, k1)
        khat = torch.einsum("oiaw,cja->cjwoi", kf, e)  # (c, s1, n2, co, ci)
        # Frequency j2·m2 + ν2 -> (j2, ν2); a real kernel gives M(−ν) = conj(M(ν)) up to a permutation of its
        # column blocks, the same norm, so half the coarse frequencies (0 <= ν2 <= m2/2) cover all.
        khat = khat.reshape(len(nu), s1, s2, m2, co, ci)[:, :, :, : m2 // 2 + 1]
        m = khat.permute(0, 3, 4, 1, 2, 5).reshape(-1, co, s1 * s2 * ci)
        gram = m @ m.mH if co <= s1 * s2 * ci else m.mH @ m  # the smaller side: λ_max(MMᴴ) = ‖M‖₂²
        top = float(torch.linalg.eigvalsh(gram)[:, -1].max())
        best = max(best, math.sqrt(max(top, 0.0) / (s1 * s2)))
    return best * _MARGIN


def conv_norm_dense(layer: nn.Module, in_shape: tuple[int, ...]) -> float:
    """The exact L2 operator norm of a bias-free convolution on inputs of ``in_shape``, from its dense matrix
    (the layer applied in float64 to every basis vector) by a symmetric eigensolver on the smaller Gram matrix."""
    d = math.prod(in_shape)
    w = layer.weight.detach().double().cpu()  # type: ignore[union-attr]
    basis = torch.eye(d, dtype=torch.float64, device="cpu").view(d, *in_shape)
    dense = type(layer)._conv_forward(layer, basis, w, None)
    a = dense.flatten(1)  # (d_in, d_out): row i is the image of basis vector i
    gram = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    return math.sqrt(max(0.0, float(torch.linalg.eigvalsh(gram)[-1]))) * _MARGIN


def conv_norm_bound(layer: nn.Module, in_shape: tuple[int, ...]) -> float:
    """A proven upper bound on a convolution's L2 operator norm: exact (:func:`conv_norm_dense`) when its dense
    matrix is small, else :func:`conv_norm_fft`."""
    with torch.no_grad():
        out_numel = math.prod(layer(torch.zeros((1, *in_shape), device=layer.weight.device)).shape[1:])
        if math.prod(in_shape) * out_numel <= _DENSE_ENTRIES:
            return conv_norm_dense(layer, in_shape)
        return conv_norm_fft(layer, in_shape)


def global_lipschitz_bound(model: torch.nn.Module, *, shape: tuple[int, ...], iterations: int = 200,
                           seed: int = 0, device: str | torch.device = "auto") -> Measurement:
    """Upper bound on the L2 Lipschitz constant of the logits: the product of upper bounds of the layers' norms.

    Every factor is proven ≥ the layer's Lipschitz constant, so the product is certified: ``Linear`` by the
    exact largest singular value (float64 SVD); ``Conv1d``/``Conv2d`` on inputs of ``shape`` by
    :func:`conv_norm_bound` (the exact norm of the dense operator when it is small, else the exact norm of the
    equivalent strided circular convolution, which contains the zero-padded one: see :func:`conv_norm_fft`);
    ``BatchNorm`` by ``max |γ|/√(var+ε)``; activations and pooling by their constants. A relative margin of
    1e-9 covers float64 rounding. Power iteration, which approaches a norm from below, is never used for the
    bound: its ``iterations`` only give each convolution's lower estimate, in ``details["conv_lower"]``, so the
    slack of each factor (``details["factors"]``) can be seen.

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible initial weights
    >>> lin = torch.nn.Linear(6, 3)
    >>> m = global_lipschitz_bound(torch.nn.Sequential(torch.nn.Flatten(), lin, torch.nn.ReLU()), shape=(6,),
    ...                            device="cpu")
    >>> abs(m.value - float(torch.linalg.matrix_norm(lin.weight.detach(), 2))) < 1e-5
    True
    """
    dev = resolve_device(device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    factors: list[tuple[str, float]] = []
    lower: dict[str, float] = {}
    with on_device(model, dev), eval_mode(model), torch.enable_grad():
        scale = 1.0
        root = model
        if isinstance(root, Normalized):
            scale = float(1 / root.std.double().min()) * _MARGIN
            factors.append(("normalize", scale))
            root = root.model
        x = torch.zeros((1, *shape), device=dev)
        for name, layer in _layers(root):
            if isinstance(layer, nn.Linear):
                k = float(torch.linalg.matrix_norm(layer.weight.detach().double(), 2)) * _MARGIN
            elif isinstance(layer, (nn.Conv1d, nn.Conv2d)):
                k = conv_norm_bound(layer, tuple(x.shape[1:]))
                lower[name or type(layer).__name__] = _power_iteration(
                    _bias_free(layer), tuple(x.shape[1:]), iterations, gen, dev)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.running_var is not None:
                var = layer.running_var.detach().double()
                w = layer.weight.detach().double() if layer.weight is not None else torch.ones_like(var)
                k = float((w.abs() / torch.sqrt(var + layer.eps)).max()) * _MARGIN
            elif isinstance(layer, _ONE):
                k = 1.0
            elif isinstance(layer, nn.LeakyReLU):
                k = max(1.0, abs(layer.negative_slope))
            elif isinstance(layer, nn.ELU):
                k = max(1.0, float(layer.alpha))
            elif isinstance(layer, nn.Sigmoid):
                k = 0.25
            elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)) and _non_overlapping(layer):
                ks = layer.kernel_size
                cells = ks * ks if isinstance(ks, int) else math.prod(ks)
                # A mean of m disjoint cells shrinks the L2 norm by at least √m; a max does not grow it.
                k = 1.0 if isinstance(layer, nn.MaxPool2d) else 1.0 / math.sqrt(cells)
            else:
                where = f" at {name!r}" if name else ""
                raise InvalidArgument(
                    f"global Lipschitz bound: expected layers of the kinds {', '.join(SUPPORTED)} but got "
                    f"{type(layer).__name__}{where}; use estimate='local' or 'sensitivity' for this model")
            factors.append((name or type(layer).__name__, k))
            with torch.no_grad():
                x = layer(x)
    value = math.prod(f for _, f in factors)
    return Measurement("Lipschitz bound", value, value, value, n=0, context="of the logits (L2, certified, global)",
                       details={"layers": len(factors), "factors": dict(factors), "conv_lower": lower})


def _non_overlapping(layer: nn.Module) -> bool:
    stride = layer.stride if layer.stride is not None else layer.kernel_size  # type: ignore[attr-defined]
    pad = getattr(layer, "padding", 0)
    return stride == layer.kernel_size and pad in (0, (0, 0)) and getattr(layer, "dilation", 1) in (1, (1, 1))  # type: ignore[attr-defined]


def lipschitz_estimate(model: torch.nn.Module, data: object, *, estimate: str = "local", radius: float = 0.05,
                       steps: int = 30, bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 256,
                       samples: int | None = None, seed: int = 0, device: str | torch.device = "auto",
                       confidence: float = 0.95) -> Measurement:
    """One of the three estimates (``"local"``, ``"sensitivity"``, ``"global"``); the others' availability in details.

    With ``estimate="local"`` the certified global bound is added to ``details["global_bound"]`` when the
    model's layers allow it, else ``details["global_bound_note"]`` says why not.
    """
    estimate = choice("estimate", estimate, ESTIMATES)
    shape = input_shape(data)
    if estimate == "global":
        return global_lipschitz_bound(model, shape=shape, seed=seed, device=device)
    common = {"bounds": bounds, "batch_size": batch_size, "samples": samples, "seed": seed, "device": device,
              "confidence": confidence}
    if estimate == "sensitivity":
        return loss_sensitivity(model, data, **common)
    m = local_lipschitz(model, data, radius=radius, steps=steps, **common)
    try:
        m.details["global_bound"] = global_lipschitz_bound(model, shape=shape, seed=seed, device=device).value
    except InvalidArgument as exc:
        m.details["global_bound_note"] = str(exc)
    return m
