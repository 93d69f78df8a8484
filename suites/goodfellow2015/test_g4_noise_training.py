"""G4: training on zero-mean noise of the same size does little against FGSM, unlike FGSM training.

Paper (MNIST maxout net, FGSM ε=0.25): "training a maxout network with noise based on randomly adding ±ε to each
pixel, or adding noise in U(−ε, ε) to each pixel ... obtained an error rate of 86.2% with confidence 97.3% and
an error rate of 90.4% with a confidence of 97.8% respectively" (plain 89.4%, FGSM-trained 17.9%). Here: the
256-256 MLP trained like G2's (``.5·J(x) + .5·J(x')``, ε=0.1) with x' = x ± 0.1 per pixel or x + U(−0.1, 0.1)
(``train_classifier(noise="sign" | "uniform", noise_eps=0.1)``), on the 8×8 digits. FGSM ε=0.1 error, seeds
0–2: ±ε noise .446–.483, uniform .502–.519, plain .572–.593, FGSM-trained .157–.169. Noise training leaves the
error ≥ 2.6× that of FGSM training; unlike the paper it does lower it somewhat (by .07–.14 against plain), so
the claim reproduces in its point (noise is inefficient), not in "no gain at all".
"""

from __future__ import annotations

import pytest

from robtest.session import RobustSession


def _fgsm_error(model, data, seed):
    with RobustSession(model, data, device="cpu", seed=seed) as s:
        m = s.accuracy(attack="fgsm", eps=0.1)
    return 1 - m.value, m.n


@pytest.mark.parametrize("kind", ["sign", "uniform"])
def test_g4_noise_training_leaves_fgsm_error_high(kind, mlp_noise_model, mlp_fgsm_model, robust_data, robust_seed,
                                                  claim):
    """G4: FGSM ε=0.1 error after noise training ≥ 2 × after FGSM training (paper 86.2%, 90.4% vs 17.9%;
    measured ×2.6–3.3) and ≥ .35 (measured .446–.519)."""
    noisy, n = _fgsm_error(mlp_noise_model(kind), robust_data, robust_seed)
    trained, _ = _fgsm_error(mlp_fgsm_model, robust_data, robust_seed)
    claim(f"G4 FGSM error, {kind}-noise training", noisy, ">= .35 and >= 2 × FGSM-trained", n=n,
          context=f"FGSM ε=0.1; FGSM-trained {trained:.3f}")
    assert noisy >= 0.35 and noisy >= 2 * trained
