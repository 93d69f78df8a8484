"""Z3: empirical robustness ρ = E[‖δ_min‖/‖x‖] under minimal-perturbation FGSM (Table 2).

Paper (MNIST): plain CNN 0.202, GDA+ReLU 0.440, GDA+BReLU 0.471; label smoothing lowers it (0.152).
Measured with robtest's ``min_perturbation`` property (L∞ FGSM, 12 bisections), seeds 0–2: plain
.098–.104, GDA .125–.127, GDA+BReLU .130–.134 (×1.20–1.34 over plain: the direction reproduces, the paper's
×2.2 does not: ε on 8×8 digits is a coarser scale), label smoothing .115–.127 (×1.18–1.24): label smoothing
*raises* ρ here, the opposite of the paper's 0.152 < 0.202.
"""

from __future__ import annotations

import pytest

from robtest.session import RobustSession


@pytest.fixture(scope="module")
def robust_model(cnn):
    return cnn("gda_brelu")


def _rho(model, data, seed):
    with RobustSession(model, data, device="cpu", seed=seed) as s:
        return s.min_perturbation(floor=0.0).measurement


@pytest.mark.min_perturbation(floor=0.11)
def test_z3_gda_brelu_empirical_robustness_floor():
    """Z3: ρ of GDA+BReLU (paper 0.471; measured .130–.134). Floor 0.11."""


@pytest.mark.parametrize("recipe", ["gda", "gda_brelu"])
def test_z3_gda_raises_empirical_robustness(recipe, cnn, robust_data, robust_seed, claim):
    """Z3: ρ(GDA) / ρ(plain) (paper 0.440/0.202 = 2.2, 0.471/0.202 = 2.3; measured ×1.20–1.34). Threshold ≥ 1.1."""
    plain = _rho(cnn("plain"), robust_data, robust_seed).value
    m = _rho(cnn(recipe), robust_data, robust_seed)
    claim(f"Z3 ρ ratio {recipe}/plain", m.value / plain, ">= 1.1", context=f"ρ {plain:.4f} → {m.value:.4f}", n=m.n)
    assert m.value >= 1.1 * plain


def test_z3_label_smoothing(cnn, robust_data, robust_seed, claim):
    """Z3: label smoothing (paper: lowers ρ to 0.152 from 0.202). Does not reproduce: measured ×1.18–1.24.
    Asserts what we measure: ρ(smooth) ≥ ρ(plain)."""
    plain = _rho(cnn("plain"), robust_data, robust_seed).value
    m = _rho(cnn("smooth"), robust_data, robust_seed)
    claim("Z3 ρ ratio smooth/plain", m.value / plain, ">= 1.0 (paper: < 1)", context=f"ρ {plain:.4f} → {m.value:.4f}",
          n=m.n)
    assert m.value >= plain
