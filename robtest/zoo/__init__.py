"""Reference models, training recipes and probes of the four papers (small, seeded, seconds on a CPU).

Users can take them as baselines: ``train_classifier(galloway_cnn(), x, y, adversarial="pgd", eps=0.2,
eps_ramp=10)`` trains the Table 2 CNN of Galloway et al. 2018 with Madry et al.'s recipe.
"""

from robtest.zoo.cache import cached_model
from robtest.zoo.models import (
    BoundedReLU,
    QuantAct,
    QuantConv2d,
    QuantLinear,
    RBFNetwork,
    galloway_cnn,
    mlp,
    quantize,
    quantized_softmax_regression,
    small_cnn,
    softmax_regression,
    spheres_mlp,
)
from robtest.zoo.probes import confidence, fooling_images, logit_gaps, switched_off_filters
from robtest.zoo.train import first_and_last_layers, train_classifier

__all__ = [
    "BoundedReLU",
    "QuantAct",
    "QuantConv2d",
    "QuantLinear",
    "RBFNetwork",
    "cached_model",
    "confidence",
    "first_and_last_layers",
    "fooling_images",
    "galloway_cnn",
    "logit_gaps",
    "mlp",
    "quantize",
    "quantized_softmax_regression",
    "small_cnn",
    "softmax_regression",
    "spheres_mlp",
    "switched_off_filters",
    "train_classifier",
]
