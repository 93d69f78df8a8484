"""G2: FGSM adversarial training (``α·J(x) + (1−α)·J(x_adv)``, α=0.5) lowers FGSM error.

Paper (MNIST maxout net, ε=0.25): 89.4% → 17.9% error, and the remaining mistakes stay confident (81.4%).
Here: a 256-256 MLP on the 8×8 digits, trained and attacked at ε=0.1 (ε=0.25 on 8×8 images with 17 grey levels
is past what any model withstands). Seeds 0–2: FGSM error .57–.59 plain → .16 trained, clean accuracy .985;
confidence on the remaining mistakes .72–.74. PGD-20 error drops too (.62 → .19), so on these digits the gain
is not only gradient masking.
"""

from __future__ import annotations

import pytest

from robtest.session import RobustSession
from suites._helpers import fgsm_mistakes


@pytest.fixture(scope="module")
def robust_model(mlp_fgsm_model):
    return mlp_fgsm_model


@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.95)
def test_g2_clean_accuracy_kept():
    """Adversarial training keeps clean accuracy (measured .985)."""


@pytest.mark.accuracy_floor(attack="fgsm", eps=0.1, floor=0.75)
def test_g2_fgsm_accuracy_floor():
    """G2: the trained MLP's FGSM ε=0.1 accuracy (measured .837 ± .001; paper's error 17.9% at ε=.25)."""


def test_g2_trained_error_at_most_half_of_plain(robust, mlp_model, robust_data, claim):
    """G2: FGSM error of the trained model ≤ 0.5 × the plain model's (paper 17.9/89.4 = 0.20; measured 0.28)."""
    trained = 1 - robust.accuracy(attack="fgsm", eps=0.1).value
    with RobustSession(mlp_model, robust_data, device="cpu", seed=robust.seed) as plain_session:
        plain = 1 - plain_session.accuracy(attack="fgsm", eps=0.1).value
    claim("G2 error ratio trained/plain", trained / plain, "<= 0.5", context=f"FGSM ε=0.1: {plain:.3f} → {trained:.3f}")
    assert trained <= 0.5 * plain


def test_g2_mistakes_stay_confident(robust_model, eval_tensors, claim):
    """G2: the trained model's wrong answers stay confident (paper 81.4%; measured .72–.74)."""
    x, y = eval_tensors
    wrong, conf = fgsm_mistakes(robust_model, x, y, 0.1)
    c = float(conf[wrong].mean())
    claim("G2 confidence on mistakes", c, ">= 0.6", context="FGSM ε=0.1", n=int(wrong.sum()))
    assert c >= 0.6
