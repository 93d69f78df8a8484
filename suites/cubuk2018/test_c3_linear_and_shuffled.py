"""C3: the power law holds for linear models and for nets trained on shuffled labels (paper: B=1.2 for the
shuffled-label net, on its training set).

Linear model: softmax regression on the test digits, B_FGSM 1.12–1.79 over seeds 0–2: reproduces.
Shuffled labels: a 256-256 MLP memorises the 1257 training digits with permuted labels (training accuracy
1.000). On its training set the FGSM error does follow a power law, but a steep one: B 4.3–4.7, not 1.2.
The memorised points all sit at a similar margin, so the error climbs from 0 to 30% within a factor of two in
ε (the fit range is 0.0055–0.011) — 1257 points are too few to see the shallow small-ε tail the paper fits on
50,000. The same steepness shows for the normally trained MLP on its own training set (B 3.2–3.8), so it is a
property of training-set evaluation at this size, not of the shuffled labels. The test asserts what we
measure: B in [2.5, 7].
"""

from __future__ import annotations

from robtest.session import RobustSession

SWEEP = {"eps": (0.002, 0.3), "points": 16, "max_error": 0.3}


def test_c3_linear_model_follows_the_law(softmax_model, robust_data, robust_seed, claim):
    """C3, linear model: B_FGSM of softmax regression in [0.9, 2.1] (paper: the law holds; measured 1.12–1.79)."""
    with RobustSession(softmax_model, robust_data, device="cpu", seed=robust_seed) as s:
        v = s.power_law(exponent=(0.9, 2.1), attack="fgsm", **SWEEP)
    claim("C3 B_FGSM linear", v.measurement.value, "in [0.9, 2.1]", low=v.measurement.low, high=v.measurement.high,
          n=v.measurement.n, context=v.measurement.context)
    assert v.passed, v.message()


def test_c3_shuffled_labels_on_training_set(shuffled_mlp_model, shuffled_labels, robust_seed, claim):
    """C3, shuffled labels (paper B=1.2 on the training set). Does not reproduce in magnitude: measured
    4.3–4.7 (see the module docstring). Asserts B in [2.5, 7]."""
    with RobustSession(shuffled_mlp_model, shuffled_labels, device="cpu", seed=robust_seed) as s:
        v = s.power_law(exponent=(2.5, 7.0), attack="fgsm", **SWEEP)
    claim("C3 B_FGSM shuffled labels (train set)", v.measurement.value, "in [2.5, 7] (paper 1.2)",
          low=v.measurement.low, high=v.measurement.high, n=v.measurement.n, context=v.measurement.context)
    assert v.passed, v.message()
