"""confidence_ceiling: an RBF model is unsure on noise, softmax regression is sure (Goodfellow G5, Galloway W2)."""

from __future__ import annotations

import math

import pytest
import torch

from robtest.errors import InvalidArgument
from robtest.properties import non_example_confidence
from robtest.session import RobustSession

from ._models import RBF, template_linear

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def digits():
    from robtest.data import digits_tensors

    return digits_tensors("test")


def test_rbf_passes_and_softmax_regression_fails_the_same_ceiling(digits):
    # Both are nearest-class-mean classifiers (the same predictions); only their confidence differs.
    with RobustSession(RBF(), digits, device="cpu", samples=100) as s:
        v = s.confidence_ceiling(ceiling=0.3, source="gaussian", std=0.5, rule="confident")
    assert v.passed and v.measurement.high < 0.15
    with RobustSession(template_linear(), digits, device="cpu", samples=100) as s:
        v = s.confidence_ceiling(ceiling=0.3, source="gaussian", std=0.5, rule="plausible")
    assert not v.passed and v.measurement.low > 0.7
    assert "is above the ceiling 0.3" in v.message()


def test_fooling_images_reach_high_confidence_on_a_linear_model():
    model = template_linear()
    m = non_example_confidence(model, shape=SHAPE, source="fooling", classes=(0, 3, 7), samples=30, steps=50,
                               device="cpu")
    assert m.value > 0.99
    assert set(m.details["per_class"]) == {0, 3, 7}
    # each fooling image is judged by its own target: check one by hand
    from robtest.properties import non_examples

    x, target = non_examples(model, 3, shape=SHAPE, classes=(0, 3, 7), steps=50, generator=torch.Generator())
    assert target.tolist() == [0, 3, 7] and model(x).argmax(1).tolist() == [0, 3, 7]


def test_sequential_stops_early_with_an_honest_interval():
    model = RBF()
    full = non_example_confidence(model, shape=SHAPE, source="uniform", samples=800, ceiling=0.5, device="cpu",
                                  batch_size=100)
    seq = non_example_confidence(model, shape=SHAPE, source="uniform", samples=800, ceiling=0.5, sequential=True,
                                 device="cpu", batch_size=100)
    # non-examples come in batches of 800/16 = 50, the planned looks at 50, 100, 200, 400, 800
    assert seq.details["stopped_early"] and seq.n in (50, 100, 200) and full.n == 800
    # Hoeffding at the stopping look's share of α: 0.05/2 over the 4 interim looks, 0.05/8 each.
    h = math.sqrt(math.log(2 / (0.05 / 8)) / (2 * seq.n))
    assert (seq.low, seq.high) == pytest.approx((max(0.0, seq.value - h), seq.value + h))
    assert seq.high < 0.5
    assert seq.high - seq.low > full.high - full.low  # paid for the repeated looks


def test_max_statistic_is_a_search_result_and_stops_once_beaten():
    m = non_example_confidence(template_linear(), shape=SHAPE, source="uniform", samples=400, statistic="max",
                               ceiling=0.5, sequential=True, batch_size=50, device="cpu")
    assert m.value > 0.5 and m.low == m.value and m.high == 1.0 and m.n == 400 // 16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "pink"}, "source: expected one of fooling, gaussian, uniform, constant but got 'pink'"),
        ({"statistic": "median"}, "statistic: expected one of mean, max but got 'median'"),
        ({"classes": (0, 12)}, "classes: expected class indices in 0..9 but got \\(0, 12\\)"),
        ({"samples": 0}, "samples: expected an integer >= 1 but got 0"),
    ],
    ids=["source", "statistic", "classes", "samples"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        non_example_confidence(template_linear(), shape=SHAPE, device="cpu", **kwargs)


def test_model_mode_and_gradients_are_left_alone():
    model = template_linear().train()
    non_example_confidence(model, shape=SHAPE, samples=4, steps=2, device="cpu")
    assert model.training and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("source", ["gaussian", "uniform", "fooling"])
def test_batch_size_changes_no_non_example(source):
    """Non-example i is drawn from its own stream (seed, i): batches of 1, 37 and 256 give the same images, so
    the same values and interval (to float rounding: a matrix product of another batch size may round the last
    bit of a logit differently) and, sequentially, the same stopping look."""
    kw = dict(shape=SHAPE, source=source, samples=120, steps=5, device="cpu", seed=2)
    runs = [non_example_confidence(template_linear(), batch_size=b, **kw) for b in (1, 37, 256)]
    seq = [non_example_confidence(RBF(), batch_size=b, ceiling=0.5, sequential=True, **kw) for b in (1, 37, 256)]
    for group in (runs, seq):
        for m in group[1:]:
            assert m.n == group[0].n and m.details["samples_used"] == group[0].details["samples_used"]
            assert (m.value, m.low, m.high) == pytest.approx((group[0].value, group[0].low, group[0].high), abs=1e-6)
            assert m.details["per_class"] == pytest.approx(group[0].details["per_class"], abs=1e-5)


def test_per_class_confidence_and_the_worst_class_in_closed_form():
    # Constant logits: the fooling steps cannot move anything (zero gradient), so the non-examples aimed at class
    # c get exactly softmax(b)[c]; the worst class is the one the model is most confident in, class 1 here.
    lin = torch.nn.Linear(64, 4)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([0.0, 2.0, 1.0, -1.0]))
    model = torch.nn.Sequential(torch.nn.Flatten(), lin).eval()
    m = non_example_confidence(model, shape=SHAPE, source="fooling", samples=40, steps=2, device="cpu")
    p = torch.softmax(lin.bias.detach().double(), 0).tolist()
    assert m.details["per_class"] == pytest.approx(dict(enumerate(p)), rel=1e-6)
    assert m.details["worst_class"] == 1
    assert m.value == pytest.approx(sum(p) / 4, rel=1e-6)  # 40 non-examples, the targets taking turns
