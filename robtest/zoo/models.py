"""Small reference architectures: inputs (N, C, H, W) in [0, 1], outputs logits (N, classes)."""

from __future__ import annotations

from torch import nn

__all__ = ["softmax_regression", "mlp", "small_cnn"]


def softmax_regression(in_shape: tuple[int, ...] = (1, 8, 8), classes: int = 10) -> nn.Module:
    """Multinomial logistic regression (Goodfellow et al. 2015's shallow softmax model)."""
    d = 1
    for s in in_shape:
        d *= s
    return nn.Sequential(nn.Flatten(), nn.Linear(d, classes))


def mlp(in_shape: tuple[int, ...] = (1, 8, 8), classes: int = 10, hidden: tuple[int, ...] = (256, 256)) -> nn.Module:
    """A ReLU multilayer perceptron."""
    d = 1
    for s in in_shape:
        d *= s
    layers: list[nn.Module] = [nn.Flatten()]
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, classes))
    return nn.Sequential(*layers)


def small_cnn(in_channels: int = 1, classes: int = 10, width: int = 32) -> nn.Module:
    """Two 3×3 conv layers and a linear readout; works on 8×8 and larger inputs (global average pool)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(2 * width * 16, classes),
    )
