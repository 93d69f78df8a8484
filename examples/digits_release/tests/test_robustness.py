"""The release gate of digits_model: absolute floors, and (with --robust-baseline) no significant regression
from the last release's baseline, robtest-baseline.json."""

import pytest


@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.95)
def test_clean_accuracy():
    pass


@pytest.mark.accuracy_floor(eps=0.1, floor=0.3)  # the default attack: the AutoAttack-style ensemble
def test_robust_accuracy():
    pass


@pytest.mark.offset_invariance(max_drop=0.7)
def test_brightness_offset():
    pass
