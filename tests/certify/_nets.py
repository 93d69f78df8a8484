"""Small ReLU networks and the checks every bound must pass on them."""

from __future__ import annotations

import torch
from torch import nn

from robtest.models import Normalized


def digits_cnn() -> nn.Module:
    """Two strided convolutions and a linear readout: 4·4·4 + 8·2·2 ReLUs, small enough for the MILP."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 2, 10))


class Residual(nn.Module):
    """``relu(conv(x)) + x`` then a second branch subtracted: the residual sums and differences of a ResNet."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 1)

    def forward(self, x):
        out = torch.relu(self.a(x))
        out += x
        return out - self.b(out) * 0.5


class Functional(nn.Module):
    """Functional ops and arithmetic with constants instead of modules."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 12)
        self.out = nn.Linear(12, 3)
        self.register_buffer("shift", torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1))

    def forward(self, x):
        x = (2 * x - 1 + self.shift) / 0.7
        h = torch.nn.functional.relu(self.fc(x.view(x.size(0), -1)))
        return self.out(-h + 1.0)


def _bn(n: int, two_d: bool, g: torch.Generator) -> nn.Module:
    bn = nn.BatchNorm2d(n) if two_d else nn.BatchNorm1d(n)
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
        bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        bn.weight.copy_(torch.randn(n, generator=g))
        bn.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return bn


def layer_zoo() -> dict[str, nn.Module]:
    """One small model per supported layer kind (inputs (N, 3, 4, 4) in [0, 1], 3 classes), in eval mode."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    models = {
        "linear-relu": nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 3)),
        "conv-stride-pad-dilation": nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
                                                  nn.Flatten(), nn.Linear(4 * 2 * 2, 3)),
        "conv-groups-valid": nn.Sequential(nn.Conv2d(3, 6, 2, groups=3, padding="valid"), nn.ReLU(), nn.Flatten(),
                                           nn.Linear(6 * 3 * 3, 3)),
        "batchnorm2d-eval": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _bn(4, True, g), nn.ReLU(), nn.Flatten(),
                                          nn.Linear(64, 3)),
        "batchnorm1d-eval": nn.Sequential(nn.Flatten(), nn.Linear(48, 8), _bn(8, False, g), nn.ReLU(),
                                          nn.Linear(8, 3)),
        "avgpool": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                 nn.Linear(16, 3)),
        "avgpool-padded": nn.Sequential(nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1), nn.Flatten(),
                                        nn.Linear(12, 3)),
        "adaptive-avgpool": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                          nn.Flatten(), nn.Linear(16, 3)),
        "zero-pad": nn.Sequential(nn.ZeroPad2d((1, 0, 2, 1)), nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(2 * 5 * 3, 3)),
        "normalized-unequal-std": Normalized(nn.Sequential(nn.Flatten(), nn.Linear(48, 10), nn.ReLU(),
                                                           nn.Linear(10, 3)),
                                             mean=[0.2, 0.5, 0.7], std=[0.1, 0.3, 0.9]),
        "residual": nn.Sequential(Residual(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)),
        "functional-and-constants": Functional(),
        "identity-dropout": nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(48, 8), nn.Identity(), nn.ReLU(),
                                          nn.Linear(8, 3)),
    }
    return {k: m.eval() for k, m in models.items()}


def margins(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y − z_j`` (N, C) of the model itself, in float64 from its float32 logits; +inf at j = y."""
    with torch.no_grad():
        z = model(x).double()
    m = z.gather(1, y[:, None]) - z
    m[torch.arange(len(y)), y] = torch.inf
    return m


def ball_samples(x: torch.Tensor, eps: float, norm: str, count: int, seed: int) -> torch.Tensor:
    """``count`` points per sample in the ε-ball ∩ [0, 1] (corners for L∞, the sphere and inside for L2):
    (count, N, ...) in float64."""
    g = torch.Generator().manual_seed(seed)
    x = x.double()  # the ball's edges in float64, as the bounds see them
    out = []
    for k in range(count):
        d = torch.randn(x.shape, generator=g, dtype=torch.float64)
        if norm == "linf":
            d = d.sign() * eps if k % 2 == 0 else (torch.rand(x.shape, generator=g, dtype=torch.float64) * 2 - 1) * eps
        else:
            d = d / d.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1))) * eps * (1.0 if k % 2 == 0 else 0.5)
        out.append((x + d).clamp(0, 1))
    return torch.stack(out)
