"""W4: the Table 2 CNN with PGD training and strong L2 weight decay (Figures 7 and 8).

Paper (CIFAR-10, ``n_f`` = 64): "trained on CIFAR-10 with 20 steps of PGD up to ε_max = 0.3 with an L∞ norm. A
regularization constant of 0.05 was used with L2 weight decay [on first and last layers, Figure 7]. The model
maintains 72% of its 56% clean test set accuracy when attacked with an L∞-ε_max = 8/255 ≈ 0.031 constrained PGD
adversary for 50 attack steps." And: "the weight decay objective is realized by dropping the majority of filters
entirely (≈72%)".

Here: the Table 2 CNN with ``n_f`` = 16 on the 28×28 upsampled digits, PGD-trained as in W1 (ε=0.2 ramped over
8 of 12 epochs, 3 steps) at Adam 1e-2, with ``weight_decay=0.05`` on the first conv and the readout
(``train_classifier(weight_decay_on=first_and_last_layers(model))``, penalty 0.05/2·‖θ‖²), against the same
recipe without weight decay. ε for the attack is scaled to the data by the pixel spread: 8/255 × σ(digits,
0.325) / σ(CIFAR-10, ≈ 0.25) ≈ 0.04. A filter is "switched off" when its kernel's L2 norm is below 0.1 of the
layer's largest (``robtest.zoo.switched_off_filters``). Seeds 0–2 (the control's and the ε=0.1 figures were
measured with the same recipe outside the suite, which trains the control but attacks only the weight-decayed
model, to stay within its time):

- clean accuracy .846–.904; PGD-50 ε=0.04 accuracy .796–.831 (540 test digits): the model keeps .920–.941 of
  its clean accuracy (paper .72 of .56). The control without weight decay keeps .918–.935 (clean .881–.933);
- weight decay switches off .25–.44 of the first-layer filters (4–7 of 16); the control none (0 of 16).

Verdicts: both **direction**, neither magnitude is testable at our scale. The kept fraction is a function of ε
and of how hard the task is: on the digits the CNN is far from CIFAR-10's 56%, and the scaled ε (a judgement:
the paper's training ε of 0.3 is ambiguous on CIFAR-10's pixel scale) decides the number; at ε=0.1 the same
model keeps .740–.797, about the paper's figure, but nothing ties ε=0.1 to 8/255 (and on seed 2 Square then
beats PGD-50: robtest flags that number suspect). Weight decay adds no robustness of its own here: the control
keeps as much (.918–.935 at ε=0.04, .742–.784 at ε=0.1). The filter fraction is a training-length effect: the
paper does not give its training length (Madry et al.'s CIFAR-10 recipe it follows runs tens of thousands of
steps) and has ``n_f`` = 64 filters on three colour channels; in our 12 epochs (240 steps) the fraction is still
rising (seed 0: at Adam 2e-3 no filter falls below .45 of the largest; at 1e-2 a quarter to a half are off), so ≈72%
is out of reach within the suite's CPU budget.
"""

from __future__ import annotations

import pytest

from robtest.zoo import first_and_last_layers, switched_off_filters

EPS = 0.04  # 8/255 × σ(digits) / σ(CIFAR-10) = 0.031 × 0.325 / 0.25
PGD50 = {"attack": "pgd", "eps": EPS, "steps": 50}


@pytest.fixture(scope="module")
def robust_model(w4_cnn):
    return w4_cnn(0.05)


@pytest.fixture(scope="module")
def robust_data(images28):
    return images28[1]


def _first_layer(model):
    return dict(model.named_modules())[first_and_last_layers(model)[0]]


@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.75)
def test_w4_weight_decayed_cnn_still_classifies():
    """Weight decay 0.05 leaves a classifier (measured .846–.904; paper 56% on CIFAR-10). Floor 0.75."""


@pytest.mark.accuracy_floor(floor=0.65, **PGD50)
def test_w4_pgd50_accuracy_floor():
    """W4: PGD-50 ε=0.04 accuracy of the weight-decayed PGD-trained CNN (measured .796–.831). Floor 0.65."""


def test_w4_keeps_most_of_its_clean_accuracy(robust, claim):
    """W4 (paper: keeps 72% of its clean accuracy under PGD-50 at 8/255). Measured .920–.941 at ε=0.04.
    Threshold: kept ≥ 0.8, and the evaluation not suspect."""
    clean = robust.accuracy()
    attacked = robust.accuracy(**PGD50)
    kept = attacked.value / clean.value
    claim("W4 PGD-50 accuracy / clean", kept, ">= 0.8 (paper .72 at ε=8/255 on CIFAR-10)", n=attacked.n,
          context=f"ε={EPS}: {attacked.value:.3f} of {clean.value:.3f}")
    assert not attacked.suspect, str(attacked)
    assert kept >= 0.8


def test_w4_weight_decay_switches_off_first_layer_filters(robust_model, w4_cnn, claim):
    """W4 (paper: ≈72% of the first-layer filters dropped). Measured .25–.44 of 16 with weight decay 0.05, 0
    without. Thresholds: ≥ 0.15 (3 of 16) with, ≤ 0.07 (at most one filter) without."""
    off = float(switched_off_filters(_first_layer(robust_model)).float().mean())
    control = float(switched_off_filters(_first_layer(w4_cnn(0.0))).float().mean())
    claim("W4 first-layer filters switched off", off, ">= 0.15; control ≤ 0.07 (paper ≈ .72)",
          context=f"‖W_i‖ < 0.1·max, n_f=16; without weight decay {control:.3f}", n=16)
    assert off >= 0.15
    assert control <= 0.07
