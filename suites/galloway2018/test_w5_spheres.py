"""W5: spheres (Figure 5). Two concentric circles (radii 1 and 1.3); the MLPs train without two opposing
quadrants and are tested on the whole circle.

Paper (qualitative, Figure 5): the full-precision MLP "flattens out" where the training set has no support,
the 1-bit-weight 2-bit-activation MLP "retains a full shape". We measure the shape through accuracy on the
unsupported quadrants (a boundary that keeps the circle's shape classifies them right). Seeds 0–2, 64-64
MLPs: both fit the supported quadrants (≥ .99); on the unsupported ones the full-precision MLP scores
.87 and the low-precision one .73 (seed 0; see docs/suites.md for all seeds). It does **not** reproduce:
with our quantiser and training recipe the low-precision model generalises worse, not better, to the missing
quadrants. The tests assert what we measure: both learn the supported part, both extrapolate above chance,
and the low-precision model is not better than the full-precision one by more than 0.05.
"""

from __future__ import annotations

import pytest
import torch


def _accuracies(model, test):
    x, y = test
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    unsupported = x[:, 0] * x[:, 1] < 0
    return float(ok[~unsupported].float().mean()), float(ok[unsupported].float().mean())


@pytest.mark.robust
@pytest.mark.parametrize("low_precision", [False, True], ids=["full-precision", "1bit-w-2bit-a"])
def test_w5_fits_the_supported_quadrants(low_precision, spheres_model, spheres_task, claim):
    """Both MLPs learn the task where they have data (measured ≥ .99)."""
    supported, unsupported = _accuracies(spheres_model(low_precision), spheres_task[1])
    claim("W5 accuracy on supported quadrants", supported, ">= 0.95",
          context=f"{'1-bit/2-bit' if low_precision else 'full precision'}; unsupported {unsupported:.3f}")
    assert supported >= 0.95
    assert unsupported >= 0.55


@pytest.mark.robust
def test_w5_low_precision_keeps_the_shape(spheres_model, spheres_task, claim):
    """W5 (paper: the low-precision MLP keeps the sphere's shape where the full-precision one flattens). Does
    not reproduce here: asserts low-precision − full-precision accuracy on the unsupported quadrants ≤ 0.05."""
    _, fp = _accuracies(spheres_model(False), spheres_task[1])
    _, lp = _accuracies(spheres_model(True), spheres_task[1])
    claim("W5 unsupported acc, low − full precision", lp - fp, "<= 0.05 (paper: > 0)",
          context=f"full precision {fp:.3f}, 1-bit/2-bit {lp:.3f}")
    assert lp - fp <= 0.05
