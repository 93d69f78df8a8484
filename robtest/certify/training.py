"""IBP training (Gowal et al., "On the effectiveness of interval bound propagation...", 2018).

The loss is ``κ·CE(z(x), y) + (1 − κ)·CE(ẑ(x, ε), y)``, where ẑ are the worst-case logits IBP allows in the
L∞ ball: ``ẑ_j = −(lower bound of z_y − z_j)`` (0 for j = y), with the last layer folded into the margins.
Training from scratch at the full ε fails, so ε ramps linearly from 0 and κ from 1 down to its final value
over the same ramp. :func:`robtest.zoo.train_classifier` calls it with ``adversarial="ibp"``: ``eps_ramp``
epochs of ramp, updated every step; ``ibp_kappa`` the final κ (0.5 in the paper).

The bounds come from the same traced graph as certification, in the training dtype with gradients; the
clean logits too, so the model is trained as it is certified: BatchNorm with its running statistics (which
this training does not update: a BatchNorm layer acts as a learnt per-channel affine map) and Dropout off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robtest.certify.ball import Ball
from robtest.certify.graph import trace
from robtest.certify.ibp import ibp_bounds, margin_spec, margins_from_bounds
from robtest.errors import InvalidArgument
from robtest.models import model_device

__all__ = ["IBPTrainer"]


class IBPTrainer:
    """The IBP training loss of ``model`` at L∞ radius ``eps`` (pixel units of ``bounds``) with final κ ``kappa``.

    ``progress`` (0 → 1 over the ramp, then above 1) sets ε_t = eps·min(progress, 1) and
    κ_t = 1 − (1 − kappa)·min(progress, 1).

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> ibp = IBPTrainer(net, x, eps=0.1)
    >>> bool(ibp.loss(x, y, progress=1.0) > ibp.loss(x, y, progress=0.0))  # the worst case costs more
    True
    >>> ibp.schedule(0.5)
    (0.05, 0.75)
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, *, eps: float, kappa: float = 0.5,
                 bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise InvalidArgument(f"eps: expected a radius > 0 for IBP training but got {eps!r}")
        if not (isinstance(kappa, (int, float)) and 0 <= kappa <= 1):
            raise InvalidArgument(f"kappa: expected the final weight of the clean loss in [0, 1] but got {kappa!r}")
        device = model_device(model) or example.device
        self.graph = trace(model, example[:2].to(device))
        if len(self.graph.out_shape) != 1:
            raise InvalidArgument(f"model: expected logits (N, C) for IBP training but the traced model returns "
                                  f"(N, {', '.join(map(str, self.graph.out_shape))})")
        self.eps, self.kappa, self.bounds = float(eps), float(kappa), (float(bounds[0]), float(bounds[1]))

    def schedule(self, progress: float) -> tuple[float, float]:
        """(ε_t, κ_t) at ``progress`` through the ramp."""
        t = min(max(float(progress), 0.0), 1.0)
        return self.eps * t, 1.0 - (1.0 - self.kappa) * t

    def loss(self, x: torch.Tensor, y: torch.Tensor, *, progress: float = 1.0) -> torch.Tensor:
        """The mixed clean and worst-case cross-entropy of the batch, differentiable in the parameters."""
        eps, kappa = self.schedule(progress)
        clean = F.cross_entropy(self.graph.forward(x), y)
        if eps <= 0 or kappa >= 1:
            return clean
        ball = Ball(x, torch.full((x.shape[0],), eps, dtype=x.dtype, device=x.device), "linf", self.bounds)
        spec = margin_spec(y, self.graph.out_shape[0], x)
        worst = -margins_from_bounds(self.graph, ibp_bounds(self.graph, ball), spec, ball)
        return kappa * clean + (1 - kappa) * F.cross_entropy(worst, y)
