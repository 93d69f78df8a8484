"""The robustness properties as pure functions: each returns a :class:`~robtest.Measurement` with its interval.

The markers and the ``robust`` fixture's methods of the same names (``confidence_ceiling``,
``offset_invariance``, ``power_law``, ``lipschitz``, ``min_perturbation``) call these and turn the measurement
into a verdict against a threshold.
"""

from robtest.properties.confidence import non_example_confidence, non_examples
from robtest.properties.linearity import linear_response_eps, logit_linearity, logit_ray
from robtest.properties.lipschitz import global_lipschitz_bound, lipschitz_estimate, local_lipschitz, loss_sensitivity
from robtest.properties.min_perturbation import minimal_perturbation
from robtest.properties.offset import offset_accuracy, offset_drop
from robtest.properties.power_law import eps_sweep, error_curve, fit_power_law, power_law_exponent
from robtest.properties.sequential import SequentialCheck, sequential_mean

__all__ = [
    "SequentialCheck",
    "eps_sweep",
    "error_curve",
    "fit_power_law",
    "global_lipschitz_bound",
    "linear_response_eps",
    "lipschitz_estimate",
    "local_lipschitz",
    "logit_linearity",
    "logit_ray",
    "loss_sensitivity",
    "minimal_perturbation",
    "non_example_confidence",
    "non_examples",
    "offset_accuracy",
    "offset_drop",
    "power_law_exponent",
    "sequential_mean",
]
