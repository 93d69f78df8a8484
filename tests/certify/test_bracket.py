"""certified_accuracy: the certified accuracy beside the attacked one on the same samples, the sequential stop
of the bracket, budgets, batch invariance, and bracket_status's three verdicts."""

from __future__ import annotations

import pytest
import torch

from robtest.measurement import Measurement
from robtest.properties.certified import bracket_status, certified_accuracy
from robtest.properties.sequential import Budget


@pytest.fixture(scope="module")
def test_set():
    from robtest.data import digits_tensors

    return digits_tensors("test")


def _run(model, data, **kw):
    kw.setdefault("attack", "pgd")
    kw.setdefault("steps", 10)
    return certified_accuracy(model, data, eps=kw.pop("eps", 0.1), device="cpu", **kw)


def test_outcomes_are_consistent_with_the_attack_and_the_bound(ibp_mlp, test_set):
    from robtest.certify import certify

    m = _run(ibp_mlp, test_set, method="crown")
    d = m.details
    ids, three = d["sample_ids"], d["outcomes3"]
    assert len(ids) == len(three) == m.n == 540
    x, y = test_set
    idx = torch.tensor(ids)
    # certified points are exactly the points CROWN certifies among those the attack left robust
    alone = certify(ibp_mlp, x[idx], y[idx], eps=0.1, method="crown").certified.tolist()
    robust = [t != -1 for t in three]
    assert [int(c and r) for c, r in zip(alone, robust, strict=True)] == d["outcomes"]
    # a certified point is never broken: the attack cannot break what CROWN certified
    assert all(r for c, r in zip(alone, robust, strict=True) if c)
    assert d["certified"] + d["unknown"] + three.count(-1) == m.n
    assert m.value <= d["attacked"]["value"] and d["gap"] == pytest.approx(d["attacked"]["value"] - m.value)
    assert m.value > 0.5  # an IBP-trained model certifies most points at its training ε


def test_the_batch_size_changes_nothing(ibp_mlp, test_set):
    a = _run(ibp_mlp, test_set, method="ibp", samples=200, batch_size=256)
    b = _run(ibp_mlp, test_set, method="ibp", samples=200, batch_size=48)
    assert a.details["outcomes3"] == b.details["outcomes3"] and a.details["sample_ids"] == b.details["sample_ids"]


@pytest.mark.parametrize(("floor", "status"), [(0.3, "pass"), (0.95, "FAIL")])
def test_the_sequential_bracket_stops_early_on_either_side(ibp_mlp, test_set, floor, status):
    m = _run(ibp_mlp, test_set, method="ibp", floor=floor, sequential=True, batch_size=32)
    assert m.details["stopped_early"] and m.n < 540
    full = _run(ibp_mlp, test_set, method="ibp")
    # the stop takes a prefix of the same seeded order, with the same outcomes
    assert full.details["sample_ids"][:m.n] == m.details["sample_ids"]
    assert full.details["outcomes3"][:m.n] == m.details["outcomes3"]
    assert bracket_status(m, floor, "point")[0] == status
    assert bracket_status(m, floor, "confident")[0] == status  # the sequential intervals settled it
    if status == "pass":
        assert m.low >= floor
    else:
        assert m.details["attacked"]["high"] < floor


def test_a_budget_that_runs_out_is_inconclusive_unless_settled(ibp_mlp, test_set):
    m = _run(ibp_mlp, test_set, method="ibp", floor=0.75, sequential=True, budget=Budget.of(None, 40))
    assert m.n == 40 and m.details["budget"] == "max_samples=40" and m.details["samples_planned"] == 540
    status, text = bracket_status(m, 0.75, "point", ran_out=m.details["budget"])
    assert (status == "inconclusive") == (m.low < 0.75 <= m.details["attacked"]["high"])
    if status == "inconclusive":
        assert "raise the budget" in text


def test_the_model_comes_back_as_it_went_in(ibp_mlp, test_set):
    ibp_mlp.train()
    flags = [p.requires_grad for p in ibp_mlp.parameters()]
    try:
        _run(ibp_mlp, test_set, method="ibp", samples=32)
        assert ibp_mlp.training and [p.requires_grad for p in ibp_mlp.parameters()] == flags
    finally:
        ibp_mlp.eval()


def _m(value, low, high, a_value, a_low, a_high, n=400):
    return Measurement("certified accuracy", value, low, high, n=n,
                       details={"attacked": {"value": a_value, "low": a_low, "high": a_high},
                                "gap": a_value - value})


@pytest.mark.parametrize(("rule", "floor", "status"), [
    ("point", 0.39, "pass"), ("point", 0.41, "inconclusive"), ("point", 0.47, "FAIL"),
    # confident: pass needs the certified interval above the floor, FAIL whenever the attacked one is not
    ("confident", 0.35, "pass"), ("confident", 0.40, "inconclusive"), ("confident", 0.43, "FAIL"),
    ("plausible", 0.45, "pass"), ("plausible", 0.48, "inconclusive"), ("plausible", 0.52, "FAIL"),
])
def test_bracket_status_under_each_rule(rule, floor, status):
    # certified 0.40 [0.35–0.45], attacked 0.46 [0.41–0.51]
    m = _m(0.40, 0.35, 0.45, 0.46, 0.41, 0.51)
    got, text = bracket_status(m, floor, rule)
    assert got == status, text
    assert "certified 0.400 [0.350–0.450], attacked 0.460 [0.410–0.510], gap 0.060" in text


def test_a_pass_is_never_given_without_the_certified_side():
    # a masked model: the attack finds nothing (attacked 1.0), nothing is proven: never a pass, under any rule
    m = _m(0.0, 0.0, 0.01, 1.0, 0.99, 1.0)
    for rule in ("point", "confident", "plausible"):
        assert bracket_status(m, 0.5, rule)[0] == "inconclusive"
