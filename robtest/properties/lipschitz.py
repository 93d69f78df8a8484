"""How fast the model's output can change with its input (Zantedeschi et al. 2017, Z1 and Z4).

Three estimates, from cheapest to strongest claim:

* ``"sensitivity"``: local loss sensitivity ``ℓ = mean_x ‖∂J(x, y)/∂x‖₂`` (Zantedeschi's Table 3 metric).
* ``"local"``: the empirical local Lipschitz constant of the logits, per sample the largest
  ``‖f(x')−f(x)‖₂/‖x'−x‖₂`` found by gradient ascent on the sphere of radius ``radius`` around ``x`` (a power
  iteration of the Jacobian for a locally linear model; the ball is not clipped to the box). Reported as the
  mean over samples; ``details["max"]`` is the largest. Search results: lower bounds of the true constants.
* ``"global"``: a certified upper bound, the product of per-layer spectral norms (exact SVD for linear layers,
  power iteration for convolutions) for sequential models built from the layers in ``SUPPORTED``; anything
  else is refused with a message naming the layer.

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
from robtest.properties._common import choice, device_batches, flat_norm, input_shape, number, positive_int
from robtest.stats import bootstrap_ci

__all__ = ["ESTIMATES", "SUPPORTED", "global_lipschitz_bound", "lipschitz_estimate", "local_lipschitz",
           "loss_sensitivity"]

ESTIMATES = ("local", "sensitivity", "global")
_ONE = (nn.ReLU, nn.Identity, nn.Flatten, nn.Dropout, nn.Tanh, nn.Hardtanh, nn.Softplus, nn.ReLU6)
SUPPORTED = ("Linear", "Conv1d", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU", "ELU",
             "Tanh", "Sigmoid", "Hardtanh", "Softplus", "Identity", "Flatten", "Dropout", "MaxPool2d (stride = kernel)",
             "AvgPool2d (stride = kernel)", "Sequential", "robtest.Normalized")


def _per_sample(model: torch.nn.Module, data: object, fn: Any, *, batch_size: int, samples: int | None, seed: int,
                bounds: tuple[float, float], device: str | torch.device) -> np.ndarray:
    dev = resolve_device(device)
    out = []
    with on_device(model, dev), eval_mode(model), torch.enable_grad():
        for x, y in device_batches(model, data, batch_size=batch_size, samples=samples, seed=seed, bounds=bounds,
                                   device=dev):
            out.append(fn(x, y).detach().double().cpu())
    return torch.cat(out).numpy()


def _mean_measurement(name: str, v: np.ndarray, confidence: float, seed: int, context: str,
                      details: dict[str, Any]) -> Measurement:
    low, high = bootstrap_ci(v, np.mean, confidence=confidence, seed=seed)
    return Measurement(name, float(v.mean()), low, high, n=int(v.size), confidence=confidence, context=context,
                       details={"max": float(v.max()), **details})


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
    def grad_norm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
        return flat_norm(g, 2)

    v = _per_sample(model, data, grad_norm, batch_size=batch_size, samples=samples, seed=seed, bounds=bounds,
                    device=device)
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
    gen = torch.Generator().manual_seed(int(seed))

    def ratio(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fx = model(x)
        d = torch.randn(x.shape, generator=gen).to(x.device)
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
                    device=device)
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
    v = torch.randn((1, *x_shape), generator=gen).to(device)
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


def global_lipschitz_bound(model: torch.nn.Module, *, shape: tuple[int, ...], iterations: int = 200,
                           seed: int = 0, device: str | torch.device = "auto") -> Measurement:
    """Upper bound on the L2 Lipschitz constant of the logits: the product of the layers' spectral norms.

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible initial weights
    >>> lin = torch.nn.Linear(6, 3)
    >>> m = global_lipschitz_bound(torch.nn.Sequential(torch.nn.Flatten(), lin, torch.nn.ReLU()), shape=(6,),
    ...                            device="cpu")
    >>> abs(m.value - float(torch.linalg.matrix_norm(lin.weight.detach(), 2))) < 1e-5
    True
    """
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    factors: list[tuple[str, float]] = []
    with on_device(model, dev), eval_mode(model), torch.enable_grad():
        scale = 1.0
        root = model
        if isinstance(root, Normalized):
            scale = float(1 / root.std.min())
            factors.append(("normalize", scale))
            root = root.model
        x = torch.zeros((1, *shape), device=dev)
        for name, layer in _layers(root):
            if isinstance(layer, nn.Linear):
                k = float(torch.linalg.matrix_norm(layer.weight.detach().double(), 2))
            elif isinstance(layer, (nn.Conv1d, nn.Conv2d)):
                k = _power_iteration(_bias_free(layer), tuple(x.shape[1:]), iterations, gen, dev)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.running_var is not None:
                w = layer.weight.detach() if layer.weight is not None else torch.ones_like(layer.running_var)
                k = float((w.abs() / torch.sqrt(layer.running_var + layer.eps)).max())
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
                       details={"layers": len(factors), "factors": dict(factors)})


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
