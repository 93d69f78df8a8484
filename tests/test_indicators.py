"""A catalogue of masked, randomised and misused models, each caught by the indicator meant for it, and sound
models that trip none (robtest/indicators.py, robtest/diagnostics.py).

Every evaluation here runs with all warnings ignored: the diagnostics reach the measurement whatever the
warning filters say.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robtest import diagnostics
from robtest.evaluate import evaluate_accuracy
from robtest.models import BPDA, EOT


class Wrap(nn.Module):
    """The trained net behind a front or a head given as ``fn(net, x)``."""

    def __init__(self, net: nn.Module, fn) -> None:
        super().__init__()
        self.net, self.fn = net, fn

    def forward(self, x):
        return self.fn(self.net, x)


def _no_grad(net, x):
    with torch.no_grad():
        return net(x)


def _numpy(net, x):
    return net(torch.from_numpy(x.detach().cpu().numpy()))


def _self_attack(net, x):
    # A "defence" that takes a gradient step on its own input inside forward.
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(net(xg).logsumexp(1).sum(), xg)
    return net((x - 0.01 * g.sign()).clamp(0, 1))


CATALOGUE = [
    ("rounding-front", lambda n, x: n(torch.round(x * 4) / 4), "zero_gradients"),
    ("no-grad-front", _no_grad, "no_gradient"),
    ("numpy-round-trip", _numpy, "no_gradient"),
    ("gaussian-noise", lambda n, x: n(x + 0.15 * torch.randn_like(x)), "randomized"),
    ("pixel-drop", lambda n, x: n(x * (torch.rand_like(x) > 0.2)), "randomized"),
    ("dropout-always-on", lambda n, x: n(F.dropout(x, 0.3, training=True)), "randomized"),
    ("over-confident-logits", lambda n, x: n(x) * 1e4, "zero_gradients"),
    ("tiny-logits", lambda n, x: n(x) * 1e-15, "tiny_gradients"),
    ("nan-gradient", lambda n, x: n(x + 0 * torch.sqrt(x - x.detach())), "nonfinite_gradients"),
    ("sigmoid-head", lambda n, x: torch.sigmoid(n(x)), "sigmoid_outputs"),
    ("softmax-head", lambda n, x: torch.softmax(n(x), 1), "probability_outputs"),
    ("gradient-inside-forward", _self_attack, "gradients_in_forward"),
]


def _evaluate(model, data, **kw):
    kw = {"attack": "pgd", "eps": 0.1, "samples": 96, "device": "cpu", "seed": 0, **kw}
    if kw["attack"] == "pgd":
        kw.setdefault("steps", 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict must not depend on the warning channel
        return evaluate_accuracy(model, data, **kw)


@pytest.mark.parametrize(("fn", "indicator"), [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE])
def test_each_broken_evaluation_trips_its_indicator(trained_mlp, fn, indicator):
    net, data = trained_mlp
    m = _evaluate(Wrap(net, fn), data)
    fired = [d.indicator for d in m.diagnostics]
    assert indicator in fired, fired
    trust = [d.indicator for d in m.diagnostics if d.kind == "trust"]
    assert m.suspect and f"SUSPECT: {', '.join(trust)}" in str(m)
    d = next(d for d in m.diagnostics if d.indicator == indicator)
    assert d.message.endswith(diagnostics.INDICATORS[indicator])  # what it means and what to try


# The sound models that trip nothing: tests/test_indicator_zoo.py (a zoo of them, under every attack).


def test_bpda_removes_the_masking_and_finds_the_true_accuracy(trained_mlp):
    net, data = trained_mlp
    masked = _evaluate(Wrap(net, lambda n, x: n(torch.round(x * 4) / 4)), data)
    through = _evaluate(nn.Sequential(BPDA(lambda x: torch.round(x * 4) / 4), net), data)
    assert through.diagnostics == ()
    assert through.value < masked.value - 0.1  # the masked number overstated robustness by a wide margin


def test_a_randomised_model_is_attacked_with_eot_and_gives_the_same_numbers_on_a_rerun(trained_mlp):
    net, data = trained_mlp
    noisy = Wrap(net, lambda n, x: n(x + 0.15 * torch.randn_like(x)))
    a, b = _evaluate(noisy, data), _evaluate(noisy, data)
    assert a.details["eot_draws"] == 8 and "with EOT" in a.context
    assert (a.value, a.details["clean_accuracy"]) == (b.value, b.details["clean_accuracy"])
    state = torch.random.get_rng_state()
    _evaluate(noisy, data)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is given back untouched
    # Forced EOT on a deterministic model changes nothing but the cost: log of the mean of identical softmaxes.
    plain, forced = _evaluate(net, data, attack="fgsm"), _evaluate(net, data, attack="fgsm", eot=2)
    assert forced.details["eot_draws"] == 2 and abs(forced.value - plain.value) <= 1 / 96


def test_eot_averages_probabilities_over_draws():
    torch.manual_seed(0)
    coin = Wrap(nn.Identity(), lambda n, x: torch.where(torch.rand(x.shape[0], 1) < 0.25, x, x.flip(1)))
    p = EOT(coin, draws=4000)(torch.tensor([[10.0, -10.0]])).exp()
    assert p[0, 0].item() == pytest.approx(0.25, abs=0.03)


def test_allowed_indicators_no_longer_make_the_measurement_suspect(trained_mlp):
    net, data = trained_mlp
    m = _evaluate(Wrap(net, lambda n, x: n(x + 0.15 * torch.randn_like(x))), data)
    fired = tuple(d.indicator for d in m.diagnostics)
    assert "randomized" in fired and m.suspect
    partly = m.with_diagnostics((), allow=("randomized",))
    assert [d.allowed for d in partly.diagnostics] == [d.indicator == "randomized" for d in m.diagnostics]
    assert partly.suspect == (len(fired) > 1)
    ok = m.with_diagnostics((), allow=fired)
    assert not ok.suspect and ok.to_record()["suspect"] is False
    assert all(d["allowed"] for d in ok.to_record()["diagnostics"]) and "SUSPECT" not in str(ok)
    with pytest.raises(diagnostics.InvalidArgument, match="expected indicator names among .* but got 'random'"):
        diagnostics.check_allow(("random",))


def test_collectors_nest_and_sum_counts():
    with diagnostics.collecting() as outer:
        with diagnostics.collecting() as inner:
            diagnostics.report("zero_gradients", warn=False, point_steps=3)
        diagnostics.report("zero_gradients", warn=False, point_steps=4)
        with diagnostics.isolated():
            diagnostics.report("randomized", warn=False)
    assert [d.evidence for d in inner.items()] == [{"point_steps": 3}]
    assert [(d.indicator, d.evidence) for d in outer.items()] == [("zero_gradients", {"point_steps": 7})]


def test_shattered_gradients_are_caught(trained_mlp):
    net, data = trained_mlp
    shattered = Wrap(net, lambda n, x: n(x + 0.01 * torch.sin(1000 * x)))
    m = _evaluate(shattered, data)
    fired = {d.indicator for d in m.diagnostics}
    assert fired & {"eps_not_monotone", "incomplete_optimization", "gradient_free_wins", "unbounded_not_chance"}, fired
    again = _evaluate(shattered, data)  # the checks are seeded: the same evidence on a rerun
    assert [d.to_record() for d in m.diagnostics] == [d.to_record() for d in again.diagnostics]


def test_other_properties_of_a_randomised_model_are_suspect(trained_mlp):
    from robtest.session import RobustSession

    net, data = trained_mlp
    noisy = Wrap(net, lambda n, x: n(x + 0.15 * torch.randn_like(x)))
    with warnings.catch_warnings(), RobustSession(noisy, data, device="cpu", samples=64) as s:
        warnings.simplefilter("ignore")
        v = s.lipschitz(max=1e9, steps=2)
        allowed = s.lipschitz(max=1e9, steps=2, allow=("randomized",))
    assert v.met and v.status == "suspect" and not v.passed and "SUSPECT evaluation of lipschitz" in v.message()
    assert allowed.passed and [d.indicator for d in allowed.measurement.diagnostics] == ["randomized"]


# -- counting indicators: a statistical threshold, counterexamples folded in, suspect only near the threshold --------

def test_the_noise_threshold_is_the_one_sided_binomial_test():
    from scipy.stats import binomtest

    from robtest.stats import NOISE_ALPHA, NOISE_RATE, exceeds_noise

    for m in (1, 5, 14, 20, 32, 64, 116):
        for k in range(m + 1):
            p = binomtest(k, m, NOISE_RATE, alternative="greater").pvalue
            assert exceeds_noise(k, m) == (k > 0 and p < NOISE_ALPHA), (k, m, p)
    # the cases the false alarms came from: 1 of 116 (the ensemble), 2 of 14 and 2 of 32 are noise
    assert not any(exceeds_noise(k, m) for k, m in ((1, 116), (2, 14), (2, 20), (2, 32)))


def test_settle_sums_counts_over_batches_before_testing():
    from robtest.indicators import settle

    with diagnostics.collecting() as found:
        for _ in range(2):  # the ensemble reports per batch: 1 of 58, twice
            diagnostics.report("gradient_free_wins", warn=False, fooled=1, of=58)
        diagnostics.report("zero_gradients", warn=False, point_steps=3)
    assert settle(found, warn=False) is False
    assert [d.indicator for d in found.items()] == ["zero_gradients"]  # trust indicators are never dropped
    with diagnostics.collecting() as found:
        diagnostics.report("incomplete_optimization", warn=False, fooled=4, of=20)
    assert settle(found, warn=False) is True and [d.kind for d in found.items()] == ["count"]


def _verdict(value, low, high, *, found, indicator="gradient_free_wins", floor=0.5):
    from robtest.measurement import Measurement
    from robtest.verdict import Verdict, decide

    d = diagnostics.Diagnostic(indicator, "m", {"fooled": 5, "of": 20})
    fix = {"value": value, "low": low, "high": high, "found": found, "probed": 20, "extrapolated": True}
    m = Measurement("accuracy", 0.9, 0.85, 0.95, n=200, details={"corrected": fix}, diagnostics=(d,))
    return Verdict("accuracy_floor", m, floor, ">=", "point", decide(m.corrected, floor, ">=", "point"))


@pytest.mark.parametrize(("corrected", "status"), [
    ((0.7, 0.62, 0.78), "pass"),      # the corrected interval clears the floor: the evidence cannot change it
    ((0.3, 0.22, 0.38), "FAIL"),      # it lies below: a failure on the corrected numbers
    ((0.55, 0.45, 0.65), "suspect"),  # it straddles: the verdict could go either way
], ids=["clear-above", "clear-below", "straddles"])
def test_a_counting_indicator_is_suspect_only_when_the_corrected_interval_straddles(corrected, status):
    v = _verdict(*corrected, found=3)
    assert v.status == status and v.passed == (status == "pass")
    assert "corrected" in v.message() and "the attack alone measured 0.900" in v.message()
    assert not v.measurement.suspect  # a counting indicator alone never makes the bare measurement suspect
    trust = _verdict(*corrected, found=3, indicator="zero_gradients")
    assert trust.status == "suspect"  # a trust indicator: suspect wherever the interval lies


def test_found_counterexamples_lower_the_number_the_verdict_reads(trained_mlp):
    net, data = trained_mlp
    weak = _evaluate(net, data, steps=1)  # PGD-1 leaves many points that a stronger probe fools
    fix, counter = weak.details["corrected"], weak.details["counterexamples"]
    assert counter["found"] > 0 and counter["found"] == len(counter["ids"]) <= counter["probed"] <= 32
    robust = {i for i, o in zip(weak.details["sample_ids"], weak.details["outcomes"], strict=True) if o}
    assert set(counter["ids"]) <= robust
    assert fix["value"] < weak.value and fix["high"] <= weak.high
    strong = _evaluate(net, data, attack="auto")
    assert strong.value <= fix["high"]  # the corrected interval still holds what a strong attack finds
    assert "corrected" in str(weak) and weak.corrected.value == fix["value"]


def test_sequential_interval_of_another_count_uses_the_same_look():
    from robtest.properties.sequential import SequentialCheck

    check = SequentialCheck(n_total=1000, first=100, threshold=0.5, comparison=">=")
    check(95, 100)
    low, high = check.interval(95, 100)
    assert check.interval_of(95, 100) == (low, high) and check.looks_taken == 1
    assert check.interval_of(80, 100)[0] < low


def _mean_threshold_model(classes: int = 10) -> nn.Module:
    """Class 0 while the mean pixel is below 0.5, another class above: an L2 perturbation of size r moves the
    mean of d = 64 pixels by at most r/8, so the L2 ball of radius 1 cannot flip an image of mean 0.15; the
    ball that covers the whole box, radius √d = 8, can."""
    lin = nn.Linear(64, classes)
    with torch.no_grad():
        lin.weight.fill_(40.0 / 64)
        lin.weight[0].fill_(-40.0 / 64)
        lin.bias.copy_(torch.linspace(-20.0, -19.9, classes))  # 40·(mean − 0.5), a little apart
        lin.bias[0] = 20.0  # 40·(0.5 − mean)
    return nn.Sequential(nn.Flatten(), lin).eval()


def test_the_l2_whole_box_check_uses_a_radius_that_covers_the_box():
    model = _mean_threshold_model()
    x = 0.1 + 0.1 * torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data = (x, torch.zeros(40, dtype=torch.long))
    # ε = 0.5 moves the mean by at most 0.0625: every point is robust, and a sound gradient attack whose ε covers
    # the whole box (√64 · 1 = 8 in L2) fools them all, so the model is not flagged.
    m = _evaluate(model, data, attack="pgd", eps=0.5, norm="l2", samples=None)
    assert m.value == 1.0
    assert m.diagnostics == (), [str(d) for d in m.diagnostics]
