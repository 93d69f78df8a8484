"""The robustness properties as pure functions: each returns a :class:`~robtest.Measurement` with its interval.

The property table (:data:`robtest.property_table.PROPERTIES`) names the function behind each marker and
``robust`` fixture method (``accuracy_floor``: :func:`robust_accuracy`, ``confidence_ceiling``:
:func:`non_example_confidence`, ``offset_invariance``: :func:`offset_drop`, ``power_law``:
:func:`power_law_exponent`, ``lipschitz``: :func:`lipschitz_estimate`, ``min_perturbation``:
:func:`minimal_perturbation`, ``certified_floor``: :func:`certified_accuracy`); the session turns the
measurement into a verdict against the threshold.
"""

from robtest.properties.accuracy import robust_accuracy
from robtest.properties.certified import bracket_status, certified_accuracy
from robtest.properties.confidence import non_example_confidence, non_examples
from robtest.properties.linearity import linear_response_eps, logit_linearity, logit_ray
from robtest.properties.lipschitz import global_lipschitz_bound, lipschitz_estimate, local_lipschitz, loss_sensitivity
from robtest.properties.min_perturbation import minimal_perturbation
from robtest.properties.offset import offset_accuracy, offset_drop
from robtest.properties.power_law import eps_sweep, error_curve, fit_power_law, power_law_exponent
from robtest.properties.sequential import Budget, SequentialCheck, sequential_mean

__all__ = [
    "Budget",
    "SequentialCheck",
    "bracket_status",
    "certified_accuracy",
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
    "robust_accuracy",
    "sequential_mean",
]
