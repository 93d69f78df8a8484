"""W3, Table 1: 3-vs-7 logistic regression across weight bit widths, FGSM ε=0.1.

Paper (MNIST 3-vs-7): FGSM accuracy 32-bit 81.1% (clean 95.0%), 8-bit 84.8%, 4-bit 77.3%, 1-bit 34.0%; FGSM
adversarial training of the 3-bit model *drops* it to 18.8%. "Clean accuracy is a weak measure of fitness."

On the 8×8 digits (253 training, 109 test images), seeds 0–2: clean accuracy .991 at every width (so clean
accuracy indeed says nothing here); FGSM ε=0.1 accuracy 32-bit .835–.844, 8/6/4-bit within .01 of it, 1-bit
.58–.68: the table's shape reproduces. FGSM adversarial training of the 3-bit model does **not** drop its
accuracy here (.85–.88 → .89–.96): on this small, well-separated task the one-step examples are the worst case
for a linear model, so training on them helps, as Goodfellow et al.'s G2 predicts.
"""

from __future__ import annotations

import pytest

from robtest.session import RobustSession


def _fgsm_accuracy(model, data, seed):
    with RobustSession(model, data, device="cpu", seed=seed) as s:
        return s.accuracy(attack="fgsm", eps=0.1)


@pytest.fixture(scope="module")
def robust_model(pair_model):
    return pair_model(None)


@pytest.fixture(scope="module")
def robust_data(pair_data):
    return pair_data[1]


@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.95)
def test_w3_float_model_clean_accuracy():
    """Table 1's 32-bit row, clean (paper 95.0%; measured .991)."""


@pytest.mark.accuracy_floor(attack="fgsm", eps=0.1, floor=0.75)
def test_w3_float_model_fgsm_accuracy():
    """Table 1's 32-bit row under FGSM ε=0.1 (paper 81.1%; measured .835–.844)."""


@pytest.mark.robust
@pytest.mark.parametrize("bits", [8, 6, 4])
def test_w3_k_bit_matches_float(bits, pair_model, pair_data, robust_seed, claim):
    """Table 1: 4- and 8-bit weights keep the float model's FGSM accuracy (paper 84.8%, 77.3% vs 81.1%;
    measured within .01). Threshold: |k-bit − 32-bit| ≤ 0.04."""
    ref = _fgsm_accuracy(pair_model(None), pair_data[1], robust_seed).value
    m = _fgsm_accuracy(pair_model(bits), pair_data[1], robust_seed)
    claim(f"W3 {bits}-bit − 32-bit FGSM acc", m.value - ref, "within ±0.04", context=f"{bits}-bit {m.value:.3f}, "
          f"32-bit {ref:.3f}, FGSM ε=0.1", n=m.n)
    assert abs(m.value - ref) <= 0.04


@pytest.mark.robust
def test_w3_binary_weights_lose_accuracy(pair_model, pair_data, robust_seed, claim):
    """Table 1: 1-bit weights lose FGSM accuracy (paper 34.0% vs 81.1%; measured .58–.68 vs .835–.844).
    Threshold: 1-bit ≤ 32-bit − 0.10."""
    ref = _fgsm_accuracy(pair_model(None), pair_data[1], robust_seed).value
    m = _fgsm_accuracy(pair_model(1), pair_data[1], robust_seed)
    claim("W3 1-bit FGSM acc", m.value, f"<= 32-bit − 0.10 ({ref - 0.10:.3f})", low=m.low, high=m.high, n=m.n,
          context="FGSM ε=0.1")
    assert m.value <= ref - 0.10


@pytest.mark.robust
def test_w3_adversarial_training_of_3_bit_model(pair_model, pair_data, robust_seed, claim):
    """Table 1's last row: FGSM-training the 3-bit model (paper: drops to 18.8%). Does not reproduce: we
    measure a rise (.85–.88 → .89–.96). The test asserts what we measure: no drop beyond 0.02."""
    plain = _fgsm_accuracy(pair_model(3), pair_data[1], robust_seed).value
    m = _fgsm_accuracy(pair_model(3, adversarial="fgsm", eps=0.1), pair_data[1], robust_seed)
    claim("W3 3-bit FGSM-trained FGSM acc", m.value, f">= 3-bit plain − 0.02 ({plain - 0.02:.3f})", low=m.low,
          high=m.high, n=m.n, context="FGSM ε=0.1 (paper 18.8%: does not reproduce)")
    assert m.value >= plain - 0.02
