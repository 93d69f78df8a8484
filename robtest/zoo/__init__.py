"""Reference models and training recipes (small, seeded, seconds on a CPU)."""

from robtest.zoo.models import mlp, small_cnn, softmax_regression
from robtest.zoo.train import train_classifier

__all__ = ["mlp", "small_cnn", "softmax_regression", "train_classifier"]
