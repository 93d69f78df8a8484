"""Seeded training of the reference models, with the papers' recipes as keyword options.

One function, :func:`train_classifier`, covers plain training and the recipes the suites compare:

- ``adversarial="fgsm"``: Goodfellow et al. 2015's ``α·J(x) + (1−α)·J(x + ε·sign ∇x J)`` (``adv_weight`` is
  1 − α, default 0.5);
- ``adversarial="pgd"``: Madry et al. 2018, training on PGD examples (random start, ``pgd_steps`` steps of
  2.5·ε/steps), ``adv_weight`` 1 by default;
- ``adversarial="ibp"``: Gowal et al. 2018's interval bound propagation training (see
  :mod:`robtest.certify.training`), ``κ·CE(z) + (1−κ)·CE(worst-case IBP logits)``, with ε ramped from 0 and κ
  from 1 to ``ibp_kappa`` over ``eps_ramp`` epochs, updated every step; the model then certifies
  (:func:`robtest.certify.certify`);
- ``eps_ramp``: ε grows linearly over the first ``eps_ramp`` epochs (PGD training at large ε stays at chance
  without it);
- ``weight_decay``: L2 penalty ``weight_decay/2 · ‖θ‖²`` (through the optimiser), on every parameter, or with
  ``weight_decay_on`` only on the parameters of the named submodules (names as in ``model.named_modules()``;
  Galloway et al. 2018 decay the first and last layers of the Table 2 CNN, see :func:`first_and_last_layers`);
- ``noise="sign"`` / ``noise="uniform"``: Goodfellow et al. 2015's control (G4): the adversarial term's
  example is ``x`` plus random ``±noise_eps`` per pixel, or ``U(−noise_eps, noise_eps)``, instead of the FGSM
  step (``adv_weight`` 0.5 by default, as for FGSM training);
- ``noise_sigma`` / ``noise_copies``: Gaussian data augmentation (Zantedeschi et al. 2017), each batch
  carries ``noise_copies`` noisy copies of every image, fresh noise each time, clipped to [0, 1];
- ``entropy_penalty``: ``loss + λ·H(softmax)`` (Cubuk et al. 2018, C6);
- ``label_smoothing``: cross-entropy against smoothed targets;
- ``loss="ovr"``: one-vs-rest binary cross-entropy on the logits (the RBF network).

The attacks used during training are plain steps in train mode, not robtest's evaluation driver: they need
no ε-ball checks or warnings, and they must not switch the model to eval mode mid-epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robtest.certify.training import IBPTrainer
from robtest.models import model_device
from robtest.rng import global_rng_kept

__all__ = ["train_classifier", "first_and_last_layers", "flush_denormal_enabled", "ADVERSARIAL", "LOSSES", "NOISES",
           "OPTIMIZERS"]

ADVERSARIAL = (None, "fgsm", "pgd", "ibp")
NOISES = (None, "sign", "uniform")
LOSSES = ("ce", "ovr")
OPTIMIZERS = ("adam", "sgd")


def flush_denormal_enabled() -> bool:
    """Whether denormal floats are flushed to zero now (torch has no getter: a denormal product tells)."""
    return bool((torch.tensor([1e-38], device="cpu") * 0.01).item() == 0)


def first_and_last_layers(model: nn.Module) -> tuple[str, str]:
    """Names of the first and the last submodule that hold parameters of their own, for ``weight_decay_on``.

    >>> from robtest.zoo import galloway_cnn
    >>> first_and_last_layers(galloway_cnn(n_f=4))
    ('1', '8')
    """
    names = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    if not names:
        raise ValueError(f"model: expected a module with parameters but got {type(model).__name__} without any")
    return names[0], names[-1]


def _device_of(model: nn.Module, x: torch.Tensor) -> torch.device:
    return model_device(model) or x.device


def _param_groups(model: nn.Module, weight_decay: float, on: tuple[str, ...] | None) -> list[dict]:
    if on is None:
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    modules = dict(model.named_modules())
    unknown = [n for n in on if n not in modules]
    if unknown or not on:
        known = [n for n in modules if n]
        raise ValueError(f"weight_decay_on: expected names of submodules among {known} but got {on!r}")
    decayed = {id(p) for n in on for p in modules[n].parameters()}
    params = list(model.parameters())
    groups = [{"params": [p for p in params if id(p) in decayed], "weight_decay": weight_decay},
              {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str, label_smoothing: float, entropy_penalty: float
          ) -> torch.Tensor:
    if kind == "ovr":
        target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / logits.shape[1]
        out = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]
    else:
        out = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if entropy_penalty:
        logp = F.log_softmax(logits, dim=1)
        out = out + entropy_penalty * -(logp.exp() * logp).sum(1).mean()
    return out


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(model(x), y, kind, 0.0, 0.0), x)
    return g


def _host_rand(x: torch.Tensor, g: torch.Generator, normal: bool = False) -> torch.Tensor:
    """U(0, 1) (or N(0, 1)) numbers of ``x``'s shape from the host generator ``g``, on ``x``'s device and dtype.

    Drawn on the host and moved: training draws its batch order and its noise from one seeded CPU generator, so a
    recipe draws the same numbers on every device (and on the CPU the numbers it always drew)."""
    draw = torch.randn if normal else torch.rand
    return draw(x.shape, generator=g, device="cpu").to(x.device, x.dtype)


def _adversarial_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, how: str, eps: float, steps: int,
                       kind: str, g: torch.Generator, bounds: tuple[float, float]) -> torch.Tensor:
    lo, hi = bounds
    if how == "fgsm":
        return (x + eps * _input_grad(model, x, y, kind).sign()).clamp(lo, hi).detach()
    step = 2.5 * eps / steps
    xa = (x + (_host_rand(x, g) * 2 - 1) * eps).clamp(lo, hi)
    for _ in range(steps):
        xa = xa + step * _input_grad(model, xa, y, kind).sign()
        xa = (x + (xa - x).clamp(-eps, eps)).clamp(lo, hi)
    return xa.detach()


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 30, lr: float = 1e-3,
                     batch_size: int = 64, weight_decay: float = 0.0, weight_decay_on: tuple[str, ...] | None = None,
                     seed: int = 0, optimizer: str = "adam", momentum: float = 0.9, loss: str = "ce",
                     adversarial: str | None = None, eps: float = 0.0,
                     eps_ramp: int = 0, adv_weight: float | None = None, pgd_steps: int = 7,
                     noise: str | None = None, noise_eps: float = 0.0,
                     noise_sigma: float = 0.0, noise_copies: int = 0, entropy_penalty: float = 0.0,
                     label_smoothing: float = 0.0, bounds: tuple[float, float] = (0.0, 1.0),
                     reinit: bool = False, ibp_kappa: float = 0.5) -> nn.Module:
    """Train ``model`` on ``(x, y)`` for ``epochs`` with one of the recipes above; same seed, same weights.

    With ``reinit=True`` every layer is first reinitialised from ``seed`` (so the result does not depend on the
    global RNG state the model was built under); by default the given weights are the starting point. Returns
    the model in eval mode, with no ``.grad`` left on its parameters. The global RNG (the CPU's and the model's
    device's) is left as it was (training draws from a forked generator state).

    Training runs where the model is; ``x`` and ``y`` may live there too or stay on the host (each batch is moved).
    The batch order and the recipes' noise and random starts are drawn on the host from one seeded generator and
    moved, so a recipe draws the same numbers on every device; with ``reinit`` the layers' initial weights come
    from the model's device's generator (another device, other initial weights).

    >>> import torch
    >>> _ = torch.manual_seed(0)  # reproducible data
    >>> from robtest.zoo import softmax_regression
    >>> x, y = torch.rand(32, 1, 8, 8), torch.arange(32) % 2
    >>> kw = dict(epochs=2, seed=1, adversarial="fgsm", eps=0.1, reinit=True)
    >>> a = train_classifier(softmax_regression(classes=2), x, y, **kw)
    >>> b = train_classifier(softmax_regression(classes=2), x, y, **kw)
    >>> bool(torch.equal(a[1].weight, b[1].weight))
    True
    """
    if adversarial not in ADVERSARIAL:
        raise ValueError(f"adversarial: expected one of {ADVERSARIAL} but got {adversarial!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES} but got {loss!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS} but got {optimizer!r}")
    if noise not in NOISES:
        raise ValueError(f"noise: expected one of {NOISES} but got {noise!r}")
    if noise and adversarial:
        raise ValueError(f"noise: the noise control replaces the adversarial term; got both noise={noise!r} and "
                         f"adversarial={adversarial!r}")
    if noise and not noise_eps > 0:
        raise ValueError(f"noise_eps: expected a radius > 0 for noise={noise!r} but got {noise_eps!r}")
    if adversarial and not eps > 0:
        raise ValueError(f"eps: expected a radius > 0 for adversarial={adversarial!r} but got {eps!r}")
    if adversarial == "ibp" and (loss != "ce" or noise_copies or label_smoothing or entropy_penalty):
        raise ValueError("adversarial: 'ibp' trains the cross-entropy of the clean and worst-case logits alone; "
                         "got it with loss, noise_copies, label_smoothing or entropy_penalty")
    if noise_copies and not noise_sigma > 0:
        raise ValueError(f"noise_sigma: expected > 0 with noise_copies={noise_copies} but got {noise_sigma!r}")
    if weight_decay_on is not None:
        weight_decay_on = (weight_decay_on,) if isinstance(weight_decay_on, str) else tuple(weight_decay_on)
    groups = _param_groups(model, weight_decay, weight_decay_on)
    w_adv = (0.5 if adversarial == "fgsm" or noise else 1.0) if adv_weight is None else float(adv_weight)
    lo, hi = bounds
    prev_denormal = flush_denormal_enabled()
    torch.set_flush_denormal(True)  # denormal floats slow CPU training many-fold
    try:
        dev = _device_of(model, x)
        with global_rng_kept(dev):
            torch.manual_seed(seed)
            # Reinitialise from the seed so a model built under any global RNG state trains to the same weights.
            if reinit:
                for m in model.modules():
                    if m is not model and hasattr(m, "reset_parameters"):
                        m.reset_parameters()
                if hasattr(model, "init_centres"):
                    model.init_centres(x, y)
            opt = (torch.optim.Adam(groups, lr=lr) if optimizer == "adam"
                   else torch.optim.SGD(groups, lr=lr, momentum=momentum))
            g = torch.Generator(device="cpu").manual_seed(seed)
            ibp = None
            if adversarial == "ibp":  # traced once, before the model is put in train mode
                ibp = IBPTrainer(model, x[:2].to(dev), eps=eps, kappa=ibp_kappa, bounds=bounds)
            model.train()
            n = x.shape[0]
            for epoch in range(epochs):
                e = eps * min(1.0, (epoch + 1) / eps_ramp) if eps_ramp else eps
                perm = torch.randperm(n, generator=g, device="cpu")
                for i in range(0, n, batch_size):
                    idx = perm[i:i + batch_size]
                    # the batch goes where the model is (data may stay on the host)
                    xb, yb = x[idx.to(x.device)].to(dev), y[idx.to(y.device)].to(dev)
                    if noise_copies:
                        noisy = xb.repeat(noise_copies, *([1] * (xb.dim() - 1)))
                        noisy = (noisy + noise_sigma * _host_rand(noisy, g, normal=True)).clamp(lo, hi)
                        xb, yb = torch.cat([xb, noisy]), yb.repeat(noise_copies + 1)
                    if ibp is not None:
                        opt.zero_grad(set_to_none=True)
                        ibp.loss(xb, yb, progress=(epoch + i / n) / eps_ramp if eps_ramp else 1.0).backward()
                        opt.step()
                        continue
                    if adversarial:
                        xa = _adversarial_batch(model, xb, yb, how=adversarial, eps=e, steps=pgd_steps, kind=loss,
                                                g=g, bounds=bounds)
                    elif noise:
                        u = _host_rand(xb, g) * 2 - 1
                        xa = (xb + noise_eps * (u.sign() if noise == "sign" else u)).clamp(lo, hi)
                    second = bool(adversarial or noise)
                    opt.zero_grad(set_to_none=True)
                    total = 0.0
                    if w_adv < 1.0 or not second:
                        total = (1.0 - (w_adv if second else 0.0)) * _loss(
                            model(xb), yb, loss, label_smoothing, entropy_penalty)
                    if second:
                        total = total + w_adv * _loss(model(xa), yb, loss, label_smoothing, entropy_penalty)
                    total.backward()
                    opt.step()
    finally:
        torch.set_flush_denormal(prev_denormal)
    for p in model.parameters():
        p.grad = None
    return model.eval()
