"""A proven pass, and a masked model that cannot get one (issue: bracketed verdicts).

The IBP-trained MLP (conftest) certifies 0.796 by CROWN at L∞ ε=0.1 against 0.813 under the default attack on the
540 test digits (seed 0, BENCHMARKS.md): the floor 0.7 is cleared by the proof itself, with margin for other seeds
and torch builds. The same model behind a rounding front (``torch.round`` of the input to 5 grey levels) is the
classic masked model: its gradients are zero, so a gradient attack finds nothing and an attack-only floor passes
on the number alone, caught only by robtest's indicators. The bound engine cannot go through the rounding, so the
bracketed verdict can never be a pass, whatever the indicators say.
"""

from __future__ import annotations

import pytest
import torch

EPS = 0.1  # the ball the suite gates (pixel units, L∞); the model trains at 0.12 for margin


class Round(torch.nn.Module):
    """Quantise the input to ``levels`` grey levels: zero gradients almost everywhere."""

    def __init__(self, levels: int = 5) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * (self.levels - 1)) / (self.levels - 1)


@pytest.mark.certified_floor(eps=EPS, floor=0.7)
def test_ibp_model_has_a_proven_floor():
    """pass, proven: the certified accuracy (CROWN) alone clears the floor."""


@pytest.mark.certified_floor(eps=EPS, floor=0.7, method="ibp")
def test_ibp_bounds_alone_prove_it_too():
    """IBP is nearly as tight as CROWN on a model trained for it (0.785 vs 0.796 at seed 0)."""


def test_a_rounding_front_is_never_passed(robust, ibp_model, robust_data, claim):
    from robtest.evaluate import evaluate_accuracy
    from robtest.properties.certified import bracket_status, certified_accuracy

    masked = torch.nn.Sequential(Round(), ibp_model).eval()
    # the attack-only view: a gradient attack leaves the masked model looking robust; the indicators catch it
    attack_only = evaluate_accuracy(masked, robust_data, attack="pgd", eps=EPS, steps=10, device=robust.device)
    assert attack_only.suspect, attack_only
    assert "zero_gradients" in [d.indicator for d in attack_only.diagnostics if not d.allowed]
    # the bracket: nothing can be certified through the rounding, so the verdict is never a pass
    m = certified_accuracy(masked, robust_data, eps=EPS, attack="pgd", steps=10, device=robust.device)
    status, text = bracket_status(m, 0.7, "point")
    claim("rounding front: certified accuracy", m.value, "not a pass at floor 0.7",
          context=f"{status}; attacked {m.details['attacked']['value']:.3f}, "
                  f"PGD-only {attack_only.value:.3f} (suspect)")
    assert m.value == 0.0 and "'round'" in m.details["unsupported"]
    assert status != "pass", text


def test_the_bracket_holds_point_by_point(robust):
    """The bracket's invariant on the gated model: no point both certified and broken, certified ≤ attacked."""
    v = robust.certified_floor(eps=EPS, floor=0.7, sequential=False)
    d = v.measurement.details
    assert v.status == "pass"
    assert d["certified"] + d["unknown"] + d["outcomes3"].count(-1) == v.measurement.n == 540
    assert v.measurement.value <= d["attacked"]["value"]
    assert d["gap"] < 0.1  # IBP training closes the gap (1.5 points at seed 0)
