"""Accuracy floors of a plain small CNN on the embedded digits (8×8, 540 test images).

Measured over seeds 0–2 (the markers' sequential runs settle after 256–512 samples): clean .977–.988; FGSM
ε=.05 .863–.867; PGD-20 ε=.05 .848–.855; PGD-20 with 2 restarts at ε=.1 .434–.473. The floors sit below the
worst seed with margin: an undefended model is not robust at ε=.1 and these tests say how far it holds.
"""

import pytest


@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.95)
def test_clean_accuracy():
    """The model learned the task: the floors below mean something only if this holds."""


@pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.75)
def test_fgsm_floor_small_eps():
    pass


@pytest.mark.accuracy_floor(attack="pgd", eps=0.05, floor=0.75, steps=20)
def test_pgd_floor_small_eps():
    pass


@pytest.mark.accuracy_floor(attack="pgd", eps=0.1, floor=0.35, steps=20, restarts=2)
def test_pgd_floor_eps_01():
    pass


def test_pgd_at_least_as_strong_as_fgsm(robust):
    """A stronger attack finds at least the failures of a weaker one (else the evaluation is broken)."""
    fgsm = robust.accuracy(attack="fgsm", eps=0.1)
    pgd = robust.accuracy(attack="pgd", eps=0.1, steps=20)
    print(f"\n  {fgsm}\n  {pgd}")
    assert pgd <= fgsm.value
