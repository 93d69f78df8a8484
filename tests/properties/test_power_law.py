"""power_law: a synthetic error curve with a known exponent, a linear model (Cubuk C3), and the range verdict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robtest.errors import InvalidArgument
from robtest.measurement import Measurement
from robtest.properties import error_curve, fit_power_law
from robtest.session import RobustSession, Verdict, decide

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
    assert "is outside the range [1.5, 2.5]" in v.message() and v.to_record()["threshold"] == "in [1.5, 2.5]"


def test_verdict_rules_on_a_range():
    m = Measurement("exponent", 1.0, 0.8, 1.2, n=10)
    assert [decide(m, (0.9, 1.5), "in", r) for r in ("point", "confident", "plausible")] == [True, False, True]
    assert [decide(m, (1.1, 1.5), "in", r) for r in ("point", "confident", "plausible")] == [False, False, True]


def test_linear_model_on_digits_with_fgsm():
    from robtest.data import digits_tensors

    model = template_linear()
    data = digits_tensors("test")
    with RobustSession(model, data, device="cpu", samples=200) as s:
        v = s.power_law(exponent=(0.7, 2.0), eps=(0.003, 0.1), points=6, max_error=0.7)
    m = v.measurement
    assert v.passed, v.message()
    assert 0 <= m.details["second_class_fraction"] <= 1
    # Δ12 is the clean top-1 minus top-2 logit of the initially-correct points
    x, y = data
    logits = model(x[:5]).detach()
    top = logits.topk(2, dim=1).values
    curve = error_curve(model, (x[:5], y[:5]), [0.01], device="cpu")
    ok = logits.argmax(1) == y[:5]
    assert np.allclose(curve["delta12"], (top[:, 0] - top[:, 1])[ok].numpy(), atol=1e-5)


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
    data = (torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    with RobustSession(template_linear(), data, device="cpu") as s, pytest.raises(InvalidArgument, match=match):
        s.power_law(**kwargs)
