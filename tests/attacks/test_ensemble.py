"""The ensemble: within one point of the exact robust accuracy, as strong as torchattacks' matching ensemble,
never weaker than its first phase, Square's wins reported, fewer classes, reproducible."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from robtest.attacks import apgd, auto, pgd
from robtest.diagnostics import collecting
from robtest.errors import EvaluationWarning

SHORT = {"steps": 50, "queries": 300}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_within_one_point_of_the_exact_robust_accuracy(exact_mlp):
    e = exact_mlp
    exact = float(e.robust.mean())
    fooled = e.fooled(auto(e.model, e.x, e.y, eps=e.eps, generator=_gen(), **SHORT))
    pgd10 = e.accuracy(pgd(e.model, e.x, e.y, eps=e.eps, generator=_gen()))
    print(f"exact {exact:.2f}  auto {1 - fooled.mean():.2f}  PGD-10 {pgd10:.2f}  ({len(e.y)} points)")
    assert not (fooled & e.robust).any()  # sound
    assert 1 - fooled.mean() <= exact + 1 / len(e.y) + 1e-9


def test_as_strong_as_torchattacks_matching_ensemble(exact_mlp):
    ta = pytest.importorskip("torchattacks")
    e = exact_mlp
    theirs = ta.MultiAttack([
        ta.APGD(e.model, eps=e.eps, steps=SHORT["steps"], loss="ce", seed=0),
        ta.APGDT(e.model, eps=e.eps, steps=SHORT["steps"], n_classes=4, seed=0),  # 3 targets, as ours
        ta.Square(e.model, eps=e.eps, n_queries=SHORT["queries"], seed=0),
    ])(e.x, e.y)
    ours = auto(e.model, e.x, e.y, eps=e.eps, targets=3, generator=_gen(), **SHORT)
    assert e.accuracy(ours) <= e.accuracy(theirs) + 1 / len(e.y) + 1e-9, (e.accuracy(ours), e.accuracy(theirs))


def test_never_weaker_than_its_first_phase(trained_mlp):
    model, (x, y) = trained_mlp
    x, y = x[:128], y[:128]
    with torch.no_grad():
        first = model(apgd(model, x, y, eps=0.08, steps=10, generator=_gen(5))).argmax(1) != y
        both = model(auto(model, x, y, eps=0.08, steps=10, queries=50, generator=_gen(5))).argmax(1) != y
    # APGD-CE is the ensemble's first phase, drawing the same starts: every point it fools stays fooled
    assert bool((first <= both).all()) and int(both.sum()) >= int(first.sum())


class _Quantised(nn.Module):
    """Rounds its input to 4 levels first: the input gradient is exactly zero, Square does not care."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 3) / 3)


def test_square_beating_the_gradient_attacks_is_reported(trained_mlp):
    model, (x, y) = trained_mlp
    masked = _Quantised(model).eval()
    with torch.no_grad():
        ok = masked(x).argmax(1) == y
    x, y = x[ok][:32], y[ok][:32]
    with collecting() as found, warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        x_adv = auto(masked, x, y, eps=0.25, steps=5, queries=100, generator=_gen())
    with torch.no_grad():
        k = int((masked(x_adv).argmax(1) != y).sum())
    got = {d.indicator: d for d in found.items()}
    assert k > 0 and "gradient_free_wins" in got and "zero_gradients" in got
    ev = got["gradient_free_wins"].evidence
    # the random starts of APGD fool a few; Square the rest of the points fooled
    assert 0 < ev["fooled"] <= ev["of"] <= 32 and k == (32 - ev["of"]) + ev["fooled"]
    assert f"Square fooled {ev['fooled']} of {ev['of']} points" in got["gradient_free_wins"].message


def test_no_report_when_square_adds_nothing(trained_mlp):
    model, (x, y) = trained_mlp
    with collecting() as found:
        auto(model, x[:32], y[:32], eps=0.3, steps=10, queries=20, generator=_gen())
    assert "gradient_free_wins" not in {d.indicator for d in found.items()}


@pytest.mark.parametrize("classes", [2, 3])
def test_fewer_than_four_classes(classes):
    # Targeted DLR needs 4 classes: the second phase is untargeted DLR for 3, the margin for 2.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, classes)).eval()
    x = torch.rand(12, 1, 4, 4, generator=_gen())
    with torch.no_grad():
        y = model(x).argmax(1)
    x_adv = auto(model, x, y, eps=0.2, steps=10, queries=20, generator=_gen())
    assert bool(((x_adv - x).abs() <= 0.2 + 1e-6).all())


def test_same_seed_same_examples(trained_mlp):
    model, (x, y) = trained_mlp
    x, y = x[:64], y[:64]
    a, b, c = (auto(model, x, y, eps=0.05, steps=10, queries=50, generator=_gen(s)) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(("classes", "second"), [(2, "apgd margin"), (3, "apgd dlr"), (4, "apgd_t dlr"),
                                                 (5, "apgd_t dlr")])
def test_the_second_phase_is_targeted_from_four_classes(monkeypatch, classes, second):
    # The targeted DLR loss needs four classes (z_π1 − (z_π3 + z_π4)/2): from four on the second phase is
    # APGD-T, as in AutoAttack; below, untargeted DLR (3) or the margin (2).
    from robtest.attacks import ensemble

    calls = []

    def spy(name, fn):
        def run(f, x, y, **kw):
            calls.append(f"{name} {kw['loss']}")
            return fn(f, x, y, **kw)
        return run

    monkeypatch.setattr(ensemble, "_apgd_core", spy("apgd", ensemble._apgd_core))
    monkeypatch.setattr(ensemble, "_apgd_t_core", spy("apgd_t", ensemble._apgd_t_core))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, classes)).eval()
    x = torch.rand(6, 1, 4, 4, generator=_gen())
    with torch.no_grad():
        y = model(x).argmax(1)
    auto(model, x, y, eps=0.01, steps=2, queries=0, generator=_gen())  # nobody fooled: both phases run
    assert calls == ["apgd ce", second]
