"""Every property gives the same per-sample results at batch sizes 1, 37 and 256 (a performance knob changes no
number): each sample's random draws come from its own stream (seed, sample id), never from a shared generator
whose numbers depend on how the samples were batched. Outcomes (fooled or not, flips, n) are compared exactly;
continuous values to float32 rounding (relative 1e-4, absolute 1e-5), because a kernel may round a row
differently in a batch of another size. The number of torchrun ranks changes nothing at all, not even the last
bit: ranks evaluate the batches one process would (tests/test_distributed.py)."""

from __future__ import annotations

import math

import pytest
import torch

from robtest.properties import (
    error_curve,
    local_lipschitz,
    loss_sensitivity,
    minimal_perturbation,
    non_example_confidence,
    offset_accuracy,
    offset_drop,
)

SIZES = (1, 37, 256)


@pytest.fixture(scope="module")
def digits_subset(trained_mlp):
    net, (x, y) = trained_mlp
    return net, (x[:90], y[:90])


def _close(a, b) -> bool:
    """Equal, with floats (also inside lists, tuples and dicts) to float32 rounding."""
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_close, a, b))
    return a == b


def _same(runs, key):
    first = runs[0]
    for other in runs[1:]:
        assert _close(other, first), key


def test_close_tells_rounding_from_a_change():
    assert _close([0.6552863391, 3, {"a": (1.0, True)}], [0.6552863186, 3, {"a": (1.0, True)}])
    assert not _close([0.655], [0.656]) and not _close([1, 2], [1, 3]) and not _close({"a": 1}, {"b": 1})


def test_local_lipschitz_starts_each_sample_from_its_own_draw(digits_subset):
    net, data = digits_subset
    runs = [local_lipschitz(net, data, steps=5, batch_size=b, device="cpu", seed=3).details["per_sample"]
            for b in SIZES]
    _same(runs, "per_sample")
    other_seed = local_lipschitz(net, data, steps=5, batch_size=37, device="cpu", seed=4).details["per_sample"]
    assert other_seed != runs[0]  # the seed is used: another seed starts from other directions


def test_loss_sensitivity(digits_subset):
    net, data = digits_subset
    _same([loss_sensitivity(net, data, batch_size=b, device="cpu").details["per_sample"] for b in SIZES], "v")


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_error_curve_flips(digits_subset, attack):
    net, data = digits_subset
    opts = {"steps": 3} if attack == "pgd" else {}
    curves = [error_curve(net, data, [0.02, 0.05, 0.1], attack=attack, batch_size=b, device="cpu", seed=1, **opts)
              for b in SIZES]
    for key in ("flips", "to_second"):  # outcomes: exactly
        assert all((c[key] == curves[0][key]).all() for c in curves), key
    _same([c["delta12"].tolist() for c in curves], "delta12")
    assert curves[0]["flips"][:, -1].any()  # the sweep fools some points: there is something to compare


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_minimal_perturbation_per_sample(digits_subset, attack):
    net, data = digits_subset
    opts = {"steps": 3} if attack == "pgd" else {}
    runs = [minimal_perturbation(net, data, attack=attack, bisections=5, batch_size=b, device="cpu", **opts)
            for b in SIZES]
    _same([(m.value, m.details["eps_min"], m.details["censored"]) for m in runs], "eps_min")


def test_offset_drop_and_accuracy(digits_subset):
    net, data = digits_subset
    drops = [offset_drop(net, data, grid=7, batch_size=b, device="cpu") for b in SIZES]
    _same([(m.value, m.low, m.high, m.details) for m in drops], "offset_drop")
    _same([offset_accuracy(net, data, 0.3, batch_size=b, device="cpu").value for b in SIZES], "offset_accuracy")


@pytest.mark.parametrize("source", ["fooling", "gaussian"])
def test_non_example_confidence(digits_subset, source):
    net, _ = digits_subset
    runs = [non_example_confidence(net, shape=(1, 8, 8), source=source, samples=50, steps=5, batch_size=b,
                                   device="cpu", seed=2) for b in SIZES]
    _same([(m.value, m.details["per_sample"], m.details.get("examples")) for m in runs], "per_sample")


def test_sequential_confidence_stops_at_the_same_look(digits_subset):
    net, _ = digits_subset
    runs = [non_example_confidence(net, shape=(1, 8, 8), source="uniform", samples=256, ceiling=0.99,
                                   sequential=True, batch_size=b, device="cpu") for b in SIZES]
    _same([(m.n, m.value, m.low, m.high) for m in runs], "sequential")
    assert runs[0].n < 256  # it stopped early: the looks, not the batches, decided where


def test_a_sample_keeps_its_result_in_another_subset(digits_subset):
    """Sample i's row does not depend on which other samples were evaluated with it: its row in a seeded
    subset of 40 of the 90 samples is its row in the evaluation of all 90."""
    from robtest.data import order

    net, data = digits_subset
    whole = local_lipschitz(net, data, steps=5, device="cpu").details["per_sample"]
    part = local_lipschitz(net, data, steps=5, device="cpu", samples=40).details["per_sample"]
    ids = order(90, 40, seed=0, in_data_order=True).tolist()  # the subset, in the data's order
    assert len(part) == 40 and part == [whole[i] for i in ids]
    assert torch.isfinite(torch.tensor(whole)).all()


def test_properties_give_the_global_rng_back(digits_subset):
    """The batches reseed torch's global RNG (for a randomised model's own draws); the caller's state is kept."""
    net, data = digits_subset
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    local_lipschitz(net, data, steps=2, device="cpu")
    offset_drop(net, data, grid=3, device="cpu")
    non_example_confidence(net, shape=(1, 8, 8), source="uniform", samples=10, device="cpu")
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_randomised_model_draws_per_batch_not_per_call_order(digits_subset):
    """Dropout at test time: the same values whatever ran before (the global RNG is seeded per batch)."""
    net, data = digits_subset

    class Noisy(torch.nn.Module):
        def forward(self, x):
            return net(torch.nn.functional.dropout(x, 0.3, training=True))

    first = loss_sensitivity(Noisy(), data, batch_size=37, device="cpu").details["per_sample"]
    torch.rand(1000)  # the global RNG moves on
    again = loss_sensitivity(Noisy(), data, batch_size=37, device="cpu").details["per_sample"]
    assert first == again
