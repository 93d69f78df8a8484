"""power_law: a synthetic error curve with a known exponent, a linear model (Cubuk C3), and the range verdict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.properties import error_curve, fit_power_law
from robtest.session import RobustSession
from robtest.verdict import Verdict, decide

from ._models import template_linear


def synthetic(b: float, n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample minimal fooling ε with P(ε* <= ε) = (ε / 0.15)^b: the error curve is exactly 0.15^-b · ε^b."""
    rng = np.random.default_rng(seed)
    eps = np.geomspace(0.005, 0.1, 8)
    eps_star = 0.15 * rng.random(n) ** (1 / b)
    return eps, eps_star[:, None] <= eps[None, :]


@pytest.mark.parametrize("b", [1.0, 2.3])
def test_recovers_a_known_exponent(b):
    eps, flips = synthetic(b)
    m = fit_power_law(eps, flips, n_resamples=300)
    assert m.low <= b <= m.high and abs(m.value - b) < 0.1
    assert m.details["A"] == pytest.approx(0.15 ** -b, rel=0.3)


def test_range_verdicts_pass_and_fail():
    eps, flips = synthetic(1.2)
    m = fit_power_law(eps, flips, n_resamples=300)
    assert decide(m, (0.9, 1.3), "in", "confident")
    assert not decide(m, (1.5, 2.5), "in", "point") and not decide(m, (1.5, 2.5), "in", "plausible")
    v = Verdict("power_law", m, (1.5, 2.5), "in", "point", False)
    assert "is outside the range [1.5, 2.5]" in v.message() and v.to_record()["threshold_text"] == "in [1.5, 2.5]"


def test_verdict_rules_on_a_range():
    m = Measurement("exponent", 1.0, 0.8, 1.2, n=10)
    assert [decide(m, (0.9, 1.5), "in", r) for r in ("point", "confident", "plausible")] == [True, False, True]
    assert [decide(m, (1.1, 1.5), "in", r) for r in ("point", "confident", "plausible")] == [False, False, True]


def test_linear_model_on_digits_with_fgsm():
    from robtest.attacks import fgsm
    from robtest.data import digits_tensors

    model = template_linear()
    x, y = digits_tensors("test")
    x, y = x[:200], y[:200]
    with RobustSession(model, (x, y), device="cpu") as s:
        v = s.power_law(exponent=(0.7, 2.0), eps=(0.003, 0.1), points=6, max_error=0.7)
    m = v.measurement
    assert v.passed, v.message()
    # The share of flips that land on the clean runner-up, recounted from FGSM at each ε of the fit range.
    with torch.no_grad():
        logits = model(x)
    ok = logits.argmax(1) == y
    runner_up = logits.topk(2, dim=1).indices[:, 1][ok]
    flipped = to_second = 0
    for e in np.geomspace(0.003, 0.1, 6):
        if m.details["eps_low"] <= e <= m.details["eps_high"]:
            with torch.no_grad():
                pred = model(fgsm(model, x[ok], y[ok], eps=float(e))).argmax(1)
            flipped += int((pred != y[ok]).sum())
            to_second += int((pred == runner_up).sum())
    assert flipped >= 2 * 5  # at least min_errors flips at each of at least two ε values
    assert m.details["second_class_fraction"] == pytest.approx(to_second / flipped)
    # Δ12 is the clean top-1 minus top-2 logit of the initially-correct points
    top = logits[:5].topk(2, dim=1).values
    curve = error_curve(model, (x[:5], y[:5]), [0.01], device="cpu")
    assert np.allclose(curve["delta12"], (top[:, 0] - top[:, 1])[ok[:5]].numpy(), atol=1e-5)


@pytest.mark.parametrize("min_errors", [1, 5, 12])
def test_an_eps_with_exactly_min_errors_flips_is_fitted(min_errors):
    # Error curve k(ε) = min_errors − 1, min_errors, 2·min_errors, 4·min_errors flips out of 100: the first ε has
    # one flip too few, the second exactly enough, so the fit uses the last three ε values.
    eps = np.array([0.01, 0.02, 0.04, 0.08])
    flips = np.zeros((100, 4), dtype=bool)
    for j, k in enumerate([min_errors - 1, min_errors, 2 * min_errors, 4 * min_errors]):
        flips[:k, j] = True
    m = fit_power_law(eps, flips, min_errors=min_errors, n_resamples=50)
    assert m.details["fit_points"] == 3
    assert m.details["eps_low"] == 0.02 and m.details["eps_high"] == 0.08
    # Error doubles as ε doubles over the fitted points: the exponent is exactly 1.
    assert m.value == pytest.approx(1.0)


def _nested_flips(counts: list[int], n: int) -> np.ndarray:
    """Per-sample outcomes whose error curve is ``counts`` flips out of ``n`` (a point fooled at ε stays fooled)."""
    flips = np.zeros((n, len(counts)), dtype=bool)
    for j, k in enumerate(counts):
        flips[:k, j] = True
    return flips


def test_fit_weights_each_point_by_its_inverse_standard_deviation():
    """The fit against scipy's weighted least squares: log p̂ has standard deviation ≈ √((1 − p)/(n·p)), and
    curve_fit with those sigmas minimises Σ (residual/σ)², the fit the docstring states. The curve is not an
    exact power law, so other weights (inverse variances) give another slope."""
    from scipy.optimize import curve_fit

    eps = np.geomspace(0.01, 0.16, 5)
    counts, n = [6, 9, 31, 44, 95], 200
    m = fit_power_law(eps, _nested_flips(counts, n), n_resamples=20)
    p = np.array(counts) / n
    sd = np.sqrt((1 - p) / (n * p))
    (slope, intercept), _ = curve_fit(lambda le, b, a: a + b * le, np.log(eps), np.log(p), sigma=sd)
    assert m.value == pytest.approx(slope, rel=1e-7) and m.details["A"] == pytest.approx(np.exp(intercept), rel=1e-6)
    unweighted = np.polyfit(np.log(eps), np.log(p), 1)[0]
    assert abs(slope - unweighted) > 0.02  # the weights matter on this curve


def test_an_eps_with_error_exactly_max_error_is_fitted():
    eps = np.array([0.01, 0.02, 0.04, 0.08])
    m = fit_power_law(eps, _nested_flips([10, 20, 40, 50], 100), max_error=0.5, n_resamples=20)
    assert m.details["fit_points"] == 4 and m.details["eps_high"] == 0.08
    m = fit_power_law(eps, _nested_flips([10, 20, 40, 51], 100), max_error=0.5, n_resamples=20)
    assert m.details["fit_points"] == 3 and m.details["eps_high"] == 0.04


def test_two_eps_with_exactly_min_errors_flips_are_enough():
    eps = np.array([0.01, 0.02])
    flips = np.zeros((100, 2), dtype=bool)
    flips[:5, 0] = flips[:5, 1] = True
    assert fit_power_law(eps, flips, min_errors=5, n_resamples=50).value == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InvalidArgument, match=r"\(>= 6 flips and <= 0.5\) but got 0"):
        fit_power_law(eps, flips, min_errors=6)


def test_unmeasurable_error_is_reported():
    eps = np.array([0.01, 0.02, 0.04])
    flips = np.zeros((100, 3), dtype=bool)
    flips[:3, 2] = True
    with pytest.raises(InvalidArgument, match="expected at least two ε values with a measurable error"):
        fit_power_law(eps, flips)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"exponent": 1.0}, "exponent: expected a pair \\(low, high\\) of numbers but got 1.0"),
     ({"exponent": (1, 2), "eps": (0.1, 0.01)}, "eps: expected a range \\(low, high\\) with low < high"),
     ({"exponent": (1, 2), "eps": (0.0, 0.1)}, "eps: expected at least two finite ε values > 0"),
     ({"exponent": (1, 2), "colour": "red"},
      "power_law: expected keyword arguments among exponent, attack, eps.* but got colour")],
    ids=["scalar-exponent", "reversed-eps", "zero-eps", "unknown"],
)
def test_bad_arguments(kwargs, match):
    data = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.zeros(4, dtype=torch.long))
    with RobustSession(template_linear(), data, device="cpu") as s, pytest.raises(InvalidArgument, match=match):
        s.power_law(**kwargs)
