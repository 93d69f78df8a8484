"""The shipped weight file loads safely and is what its script makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import robtest
from robtest.data import digits_tensors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_shipped_softmax_weights_load_and_classify_the_digits():
    sys.path.insert(0, str(FIXTURES))
    try:
        from make_digits_softmax import PATH, build
    finally:
        sys.path.remove(str(FIXTURES))
    model = robtest.load_weights(build(), PATH).eval()
    m = robtest.evaluate_accuracy(model, digits_tensors("test"), device="cpu")
    assert m >= 0.9, m
    fgsm = robtest.evaluate_accuracy(model, digits_tensors("test"), attack="fgsm", eps=0.25, device="cpu")
    assert fgsm <= 0.1, fgsm  # Goodfellow's G1: shallow softmax regression is broken at ε = 0.25


def test_the_script_regenerates_the_same_weights():
    out = subprocess.run([sys.executable, str(FIXTURES / "make_digits_softmax.py"), "--check"],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout + out.stderr
