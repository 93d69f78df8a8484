"""evaluate_accuracy: the out-of-memory split and the early-stop shortcuts change no result.

Correctness only; nothing here is timed (the benchmarks in benchmarks/ do that).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from robtest.attacks._driver import predict
from robtest.attacks.pgd import pgd
from robtest.data import digits_tensors
from robtest.errors import BatchSplitWarning
from robtest.evaluate import evaluate_accuracy


class OOMAbove(nn.Module):
    """Wraps a model and fails like a GPU out of memory on batches larger than ``limit``."""

    def __init__(self, model: nn.Module, limit: int, error: type[Exception]) -> None:
        super().__init__()
        self.model, self.limit, self.error, self.calls_failed = model, limit, error, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            self.calls_failed += 1
            raise self.error(f"CUDA out of memory. Tried to allocate {x.shape[0]} MiB (fake, on CPU)")
        return self.model(x)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


@pytest.fixture(scope="module")
def case():
    """Digits labelled by the model itself, with every fifth label shifted: some points are clean-wrong."""
    model = _model()
    x, _ = digits_tensors("test")
    x = x[:200]
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::5] = (y[::5] + 1) % 10
    return model, x, y


SETTINGS = [
    pytest.param("fgsm", {}, id="fgsm"),
    pytest.param("pgd", {"steps": 5, "random_start": False}, id="pgd-linf"),
    pytest.param("pgd", {"steps": 5, "random_start": False, "norm": "l2"}, id="pgd-l2"),
    pytest.param("pgd", {"steps": 5, "early_stop": False}, id="pgd-random-start-fixed-budget"),
]


@pytest.mark.parametrize(("attack", "options", "error"), [
    *(pytest.param(*p.values, torch.cuda.OutOfMemoryError, id=p.id) for p in SETTINGS),
    pytest.param("fgsm", {}, RuntimeError, id="fgsm-RuntimeError-out-of-memory"),
])
def test_split_on_out_of_memory_gives_the_unsplit_result(case, attack, options, error):
    model, x, y = case
    eps = 0.3 if options.get("norm") == "l2" else 0.05
    kw = dict(attack=attack, eps=eps, batch_size=64, device="cpu", seed=3, **options)
    whole = evaluate_accuracy(model, (x, y), **kw)
    small = OOMAbove(model, limit=16, error=error)
    with pytest.warns(BatchSplitWarning, match="batch_size") as record:
        split = evaluate_accuracy(small, (x, y), **kw)
    assert sum(issubclass(w.category, BatchSplitWarning) for w in record) == 1, "warn once per evaluation"
    assert (split.value, split.n, split.low, split.high) == (whole.value, whole.n, whole.low, whole.high)
    assert split.details == whole.details
    # Later batches start at the size that worked instead of failing again.
    assert small.calls_failed == 2  # 64 → 32 → 16 on the first batch only


def test_other_runtime_errors_are_not_swallowed(case):
    model, x, y = case

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        evaluate_accuracy(Broken(), (x, y), attack="fgsm", eps=0.1, device="cpu")


def test_no_split_no_warning(case):
    model, x, y = case
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchSplitWarning)
        evaluate_accuracy(model, (x, y), attack="fgsm", eps=0.05, batch_size=64, device="cpu")


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_early_stop_and_skipping_clean_wrong_points_change_no_accuracy(case, norm):
    """The shortcuts (PGD stops on fooled points; clean-wrong points are not attacked) against the
    unoptimised path: every point attacked for the full budget, then re-predicted."""
    model, x, y = case
    eps = 0.3 if norm == "l2" else 0.05
    opts = dict(eps=eps, norm=norm, steps=10, random_start=False)
    fast = evaluate_accuracy(model, (x, y), attack="pgd", batch_size=64, device="cpu", seed=0, **opts)
    fixed = evaluate_accuracy(model, (x, y), attack="pgd", batch_size=64, device="cpu", seed=0, early_stop=False,
                              **opts)
    x_adv = pgd(model, x, y, early_stop=False, **opts)
    slow_correct = int((predict(model, x_adv).argmax(1) == y).sum())
    assert 0 < slow_correct < len(y), "the case must have both robust and broken points to mean anything"
    assert fast.details["correct"] == fixed.details["correct"] == slow_correct
    assert fast.value == fixed.value == slow_correct / len(y)
    assert fast.details["clean_accuracy"] == fixed.details["clean_accuracy"] == pytest.approx(0.8)


def test_early_stop_returns_the_same_examples_for_points_it_never_stopped(case):
    """Points that are never fooled go through the same steps with or without early stop: same examples."""
    model, x, y = case
    opts = dict(eps=0.05, steps=10, random_start=True)
    a = pgd(model, x, y, early_stop=True, generator=torch.Generator().manual_seed(1), **opts)
    b = pgd(model, x, y, early_stop=False, generator=torch.Generator().manual_seed(1), **opts)
    robust = predict(model, b).argmax(1) == y
    robust &= predict(model, a).argmax(1) == y
    assert robust.any()
    torch.testing.assert_close(a[robust], b[robust], rtol=0, atol=1e-6)


# -- bad inputs: a clear error, never a number --------------------------------------------------------------------


def test_attack_options_without_an_attack():
    from robtest.errors import InvalidArgument
    from robtest.session import RobustSession

    data = digits_tensors("test")
    with pytest.raises(InvalidArgument, match="attack options: expected none without an attack but got steps; name "
                                              r"the attack \(e.g. attack='pgd'\) or drop the options"):
        evaluate_accuracy(_model(), data, steps=40, device="cpu")
    with RobustSession(_model(), data, device="cpu") as s:
        for sequential in (False, True):
            with pytest.raises(InvalidArgument, match="attack options: expected none without an attack"):
                s.accuracy_floor(eps=0.1, floor=0.5, attack=None, steps=40, sequential=sequential)


@pytest.mark.parametrize("sequential", [False, True], ids=["fixed", "sequential"])
def test_empty_data_is_an_error_not_nan(sequential):
    from robtest.errors import InputError
    from robtest.session import RobustSession

    empty = (torch.rand(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    match = "data: expected at least one sample but got an empty dataset"
    with pytest.raises(InputError, match=match):
        evaluate_accuracy(_model(), empty, device="cpu")
    with RobustSession(_model(), empty, device="cpu") as s:
        with pytest.raises(InputError, match=match):
            s.accuracy()
        with pytest.raises(InputError, match=match):
            s.accuracy_floor(eps=0.1, floor=0.5, sequential=sequential)


def test_first_forward_errors_come_as_input_errors():
    from robtest.errors import InputError

    x, y = digits_tensors("test")
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 10))
    with pytest.raises(InputError, match=r"looks channels-last \(N, H, W, C\); use x.permute\(0, 3, 1, 2\)"):
        evaluate_accuracy(cnn, (x.permute(0, 2, 3, 1), y), attack="fgsm", eps=0.1, device="cpu")
    with pytest.raises(InputError, match="model's dtype torch.float16 but got torch.float32"):
        evaluate_accuracy(_model().half(), (x, y), device="cpu")


def test_numpy_eps_gives_the_float_result():
    import numpy as np

    data = digits_tensors("test")
    want = evaluate_accuracy(_model(), data, attack="fgsm", eps=0.05, device="cpu").value
    assert evaluate_accuracy(_model(), data, attack="fgsm", eps=np.float32(0.05), device="cpu").value == want


def test_per_sample_outcomes_pair_with_a_rerun_on_the_same_ids():
    x, y = digits_tensors("test")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    m = evaluate_accuracy(model, (x, y), attack="fgsm", eps=0.05, samples=100, seed=4, device="cpu", checks=False)
    ids, outcomes = m.details["sample_ids"], m.details["outcomes"]
    assert len(ids) == len(outcomes) == 100 and sum(outcomes) == m.details["correct"] and set(outcomes) <= {0, 1}
    # the outcome of each sample is its own: a reversed list of ids, another seed, no subset size
    again = evaluate_accuracy(model, (x, y), attack="fgsm", eps=0.05, seed=9, device="cpu", checks=False,
                              sample_ids=ids[::-1])
    assert again.details["sample_ids"] == ids[::-1] and again.details["outcomes"] == outcomes[::-1]
    assert again.value == m.value and again.details["data_fingerprint"] != m.details["data_fingerprint"]
    rec = m.to_record()["details"]  # the lists survive into the JSON-safe record
    assert rec["sample_ids"] == ids and rec["outcomes"] == outcomes


def test_sample_ids_out_of_range_name_the_data_size():
    from robtest.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"sample_ids: expected indices in \[0, 540\) .* got \[540\]"):
        evaluate_accuracy(nn.Flatten(), digits_tensors("test"), device="cpu", sample_ids=[0, 540])


KNOB_ATTACKS = [
    pytest.param("pgd", {"steps": 5, "restarts": 2}, id="pgd-random-start-restarts"),
    pytest.param("pgd", {"steps": 5, "norm": "l2"}, id="pgd-l2"),
    pytest.param("apgd", {"steps": 8, "restarts": 2}, id="apgd"),
    pytest.param("square", {"queries": 40}, id="square"),
    pytest.param("auto", {"steps": 8, "targets": 3, "queries": 40}, id="auto"),
]


@pytest.mark.parametrize(("attack", "options"), KNOB_ATTACKS)
def test_batch_size_changes_no_per_sample_outcome(trained_mlp, attack, options):
    """Random starts, restarts and Square's search are drawn per (seed, sample id): batches of 1, 37 and 256
    give every sample the same outcome, and so the same value, interval, n and diagnostics."""
    model, (x, y) = trained_mlp
    eps = 0.5 if options.get("norm") == "l2" else 0.08
    runs = [evaluate_accuracy(model, (x, y), attack=attack, eps=eps, samples=60, seed=4, device="cpu",
                              batch_size=b, **options) for b in (1, 37, 256)]
    first = runs[0]
    assert 0 < first.details["correct"] < 60  # something was fooled and something was not
    for m in runs[1:]:
        assert m.details["outcomes"] == first.details["outcomes"]
        assert m.details["sample_ids"] == first.details["sample_ids"]
        assert (m.value, m.low, m.high, m.n) == (first.value, first.low, first.high, first.n)
        assert m.details["data_fingerprint"] == first.details["data_fingerprint"]
        assert [(d.indicator, d.evidence) for d in m.diagnostics] == \
            [(d.indicator, d.evidence) for d in first.diagnostics]


def test_sequential_looks_do_not_depend_on_the_batch_size(trained_mlp):
    """Looks are planned in samples (64, 128, ...): the stop, n and interval are the same for any batch size."""
    from robtest.properties.sequential import SequentialCheck

    model, data = trained_mlp
    got = []
    for b in (1, 37, 256):
        check = SequentialCheck(n_total=540, threshold=0.5, comparison=">=")
        m = evaluate_accuracy(model, data, attack="fgsm", eps=0.05, device="cpu", batch_size=b, stop=check,
                              checks=False)
        got.append((m.n, m.details["correct"], check.interval(m.details["correct"], m.n), check.looks_taken))
    assert got[0][0] in (64, 128, 256, 512, 540) and got[0][0] < 540  # stopped early, at a planned look
    assert got[1] == got[0] == got[2]


def test_bf16_attack_and_channels_last_stay_within_the_stated_tolerance():
    """bf16 autocast changes only which examples the attack finds (points are judged by the fp32 model, and
    re-attacked in fp32 where bf16 alone called them fooled): on digits MLPs it moved the accuracy by 0.02 to
    0.03 before that recheck, by nothing after it; the stated tolerance is 0.02. channels_last changes nothing
    here and gives the model its weights back contiguous."""
    from robtest.errors import InvalidArgument
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    torch.manual_seed(0)  # the initial weights: the same model whatever ran before
    model = train_classifier(mlp(hidden=(64,)), x, y, epochs=15, lr=3e-3, seed=0)
    data = digits_tensors("test")
    kw = dict(attack="pgd", eps=0.1, steps=10, samples=200, device="cpu", checks=False)
    fp32 = evaluate_accuracy(model, data, **kw)
    bf16 = evaluate_accuracy(model, data, precision="bf16", **kw)
    flips = sum(a != b for a, b in zip(fp32.details["outcomes"], bf16.details["outcomes"], strict=True))
    assert abs(bf16.value - fp32.value) <= 0.02 and flips <= 4
    assert bf16.context.endswith("(bf16 attack)") and bf16.details["clean_accuracy"] == fp32.details["clean_accuracy"]
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 10)).eval()
    x, _ = data
    with torch.no_grad():
        y = cnn(x).argmax(1)
    kw = dict(attack="pgd", eps=0.02, steps=5, samples=100, device="cpu", checks=False)
    plain = evaluate_accuracy(cnn, (x, y), **kw)
    last = evaluate_accuracy(cnn, (x, y), channels_last=True, **kw)
    assert last.details["outcomes"] == plain.details["outcomes"] and cnn[0].weight.is_contiguous()
    with pytest.raises(InvalidArgument, match="precision: expected one of fp32, bf16 but got 'fp16'"):
        evaluate_accuracy(model, data, precision="fp16", device="cpu")


def test_per_class_accuracy_and_the_flip_matrix_account_for_every_sample(trained_mlp):
    from scipy.stats import binomtest

    net, data = trained_mlp
    m = evaluate_accuracy(net, data, attack="pgd", eps=0.1, steps=5, samples=200, device="cpu", checks=False)
    per, flips = m.details["per_class"], m.details["flips"]
    assert sum(c["n"] for c in per.values()) == m.n and sum(c["correct"] for c in per.values()) == m.details["correct"]
    for label, c in per.items():  # each class's interval is the Wilson interval of its own count
        ci = binomtest(c["correct"], c["n"]).proportion_ci(method="wilson")
        assert (c["low"], c["high"]) == pytest.approx((ci.low, ci.high))
        assert sum(flips[int(label)]) == c["n"] and flips[int(label)][int(label)] == c["correct"]
    assert sum(map(sum, flips)) == m.n
    # the predictions behind the matrix are those of the separate forward pass: robust exactly where they are right
    labels = [int(data[1][i]) for i in m.details["sample_ids"]]
    assert [int(p == t) for p, t in zip(m.details["predictions"], labels, strict=True)] == m.details["outcomes"]

class _TiedInBf16(nn.Module):
    """Two logits 0.001 apart, [s, s + 0.001]: class 1 wins in fp32 at every input, while in bf16 (spacing 2⁻⁷
    near s ≈ 1) both round to s and the tie goes to class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 1)
        with torch.no_grad():
            self.lin.weight.fill_(1 / 16)
            self.lin.bias.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lin(x.flatten(1))
        return torch.cat([s, s + 1e-3], dim=1)


def test_bf16_attack_points_are_judged_by_the_full_precision_model():
    model = _TiedInBf16().eval()
    x = torch.rand(24, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.ones(24, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the premise: in bf16 the model predicts class 0
        assert bool((model(x).argmax(1) == 0).all())
    # No perturbation can flip the fp32 prediction (the margin is 0.001 everywhere): accuracy 1 however the bf16
    # attack ran, as long as the points are judged by the model in its own precision.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both logits move together: the input gradient is exactly zero
        m = evaluate_accuracy(model, (x, y), attack="fgsm", eps=0.1, precision="bf16", device="cpu", checks=False)
    assert (m.value, m.details["clean_accuracy"]) == (1.0, 1.0)


class _Cycle(nn.Module):
    """A "randomised" model that is deterministic in its call count: one call in 32 gives class 1 probability
    ~1, the others 0.49. The softmax averaged over any 32 consecutive calls favours class 1 ((1 + 31·0.49)/32
    > 0.5); over 8 consecutive calls it does only when they hold the one special call (one window in four)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        special = self.calls % 32 == 0
        self.calls += 1
        q = 0.49  # class 1's probability on an ordinary call: logits (0, log(q/(1 − q)))
        return x.flatten(1)[:, :1] * 0 + torch.tensor([0.0, 20.0 if special else math.log(q / (1 - q))])


def test_eot_predictions_average_four_times_the_attack_draws():
    # eot=8: the attack averages 8 draws, the prediction that counts a point 32; with 32 every point is right.
    x = torch.rand(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    y = torch.ones(64, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the probe reports the model as randomised
        m = evaluate_accuracy(_Cycle(), (x, y), eot=8, batch_size=8, device="cpu")
    assert m.value == 1.0 and m.details["eot_draws"] == 8


def test_bf16_rechecks_in_fp32_the_points_bf16_alone_called_fooled():
    """Issue 19: on a random ResNet-18 at ε=1/255 bf16 raised the accuracy by 0.098. The attack stops on a point
    once it looks fooled in bf16; the logits' top-2 gaps of a random network are small and an attack leaves its
    points at the boundary, where bf16 rounding often disagrees with fp32: the stopped points were judged (in
    fp32) still correct. Here 64 points, PGD-10: +0.078 (5 points) before the fp32 recheck, none after."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    kw = dict(attack="pgd", eps=1 / 255, steps=10, device="cpu", checks=False, batch_size=64)
    fp32 = evaluate_accuracy(model, (x, y), **kw)
    bf16 = evaluate_accuracy(model, (x, y), precision="bf16", **kw)
    flips = sum(a != b for a, b in zip(fp32.details["outcomes"], bf16.details["outcomes"], strict=True))
    assert flips <= 1 and abs(bf16.value - fp32.value) <= 0.02, (fp32.value, bf16.value)



def test_the_first_adversarial_examples_are_kept_for_the_report(trained_mlp):
    """The report's examples: the first points the attack fooled in the visit order (the same at any batch size),
    each a real adversarial example: in the ε-ball and the box, clean correct, classified otherwise after, with
    the confidences the model gives (recomputed here)."""
    model, data = trained_mlp
    runs = [evaluate_accuracy(model, data, attack="pgd", eps=0.1, steps=5, device="cpu", batch_size=b, samples=200)
            for b in (256, 7)]
    ex = runs[0].details["adversarial"]
    assert ex == runs[1].details["adversarial"] and len(ex["ids"]) == 4
    ids, outcomes = runs[0].details["sample_ids"], runs[0].details["outcomes"]
    x_all, y_all = data
    with torch.no_grad():
        clean_pred = model(x_all[torch.tensor(ids)]).argmax(1).tolist()
    first = [i for i, o, cp, y in zip(ids, outcomes, clean_pred, runs[0].details["labels"], strict=True)
             if not o and cp == y]  # clean correct, not robust: fooled by the attack, in the visit order
    assert ex["ids"] == first[:4]
    for k, sid in enumerate(ex["ids"]):
        clean, adv = torch.tensor(ex["clean"][k]), torch.tensor(ex["adversarial"][k])
        assert torch.allclose(clean, x_all[sid], atol=1e-4)
        assert (adv - clean).abs().max() <= 0.1 + 2e-4 and adv.min() >= 0 and adv.max() <= 1
        with torch.no_grad():
            pa, pc = (model(t[None]).softmax(1)[0] for t in (adv, clean))
        assert ex["label"][k] == int(y_all[sid]) == ex["clean_class"][k] == int(pc.argmax())
        assert ex["adversarial_class"][k] == int(pa.argmax()) != ex["label"][k]
        assert ex["adversarial_confidence"][k] == pytest.approx(float(pa.max()), abs=2e-3)
    clean = evaluate_accuracy(model, data, device="cpu", samples=50)
    assert "adversarial" not in clean.details  # nothing to show without an attack


@pytest.mark.parametrize("sequential", [False, True], ids=["every-batch", "sequential-looks"])
def test_an_evaluation_that_died_resumes_from_its_checkpoint(trained_mlp, tmp_path, sequential):
    """A model that raises half-way (a preempted job) leaves the finished segments in the checkpoint; the rerun
    evaluates only the rest and gives every number of an uninterrupted run (the sequential stop replays its
    looks). The checkpoint holds tensors and numbers only: it loads with weights_only=True."""
    from robtest.evaluate import checkpointing
    from robtest.properties.sequential import SequentialCheck

    model, data = trained_mlp

    class Dies(torch.nn.Module):
        def __init__(self, after):
            super().__init__()
            self.inner, self.after, self.rows = model, after, 0

        def forward(self, x):
            self.rows += x.shape[0]
            if self.rows > self.after:
                raise RuntimeError("preempted")
            return self.inner(x)

    def evaluate(m):
        stop = SequentialCheck(n_total=540, threshold=0.2, comparison=">=") if sequential else None
        return evaluate_accuracy(m, data, attack="pgd", eps=0.1, steps=40, device="cpu", batch_size=64, stop=stop)

    whole = Dies(10**9)
    reference = evaluate(whole)
    prefix = str(tmp_path / "k")
    with checkpointing(prefix), pytest.raises(RuntimeError, match="preempted"):
        evaluate(Dies(whole.rows // 4))  # in the attack loop (the checks after it cost about as much)
    saved = torch.load(f"{prefix}.1.pt", weights_only=True)
    assert 0 < len(saved["segments"]) < len(saved["planned"])
    again = Dies(10**9)
    with checkpointing(prefix):
        resumed = evaluate(again)
    assert resumed.to_record() == reference.to_record()
    assert again.rows < 0.9 * whole.rows, (again.rows, whole.rows)
