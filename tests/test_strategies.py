"""robtest.strategies: every strategy stays in the box, keeps the shape, shrinks to the identity, and checks its
arguments in the house style."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

import robtest.strategies as rst
from robtest.errors import InvalidArgument

X = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
RGB = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(1))


def _build(name):
    return rst.get_strategy(name, **({"eps": 0.1} if name in ("linf_perturbations", "l2_perturbations") else {}))


ALL = {**{n: _build(n) for n in rst.STRATEGIES},
       "compositions": rst.compositions(rst.offsets(), rst.rotations(), rst.occlusions()),
       "directed_perturbations": rst.directed_perturbations(
           direction=torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(2)), eps=0.1)}


@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=15)
@given(data=st.data())
def test_in_the_box_same_shape_and_describable(name, data):
    p = data.draw(ALL[name])
    for x in (X, RGB) if name != "directed_perturbations" else (X,):
        out = p.apply(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    rec = p.to_record()
    assert json.loads(json.dumps(rec)) == rec  # JSON-safe: the record survives a round trip unchanged
    assert rec["kind"] == p.kind == name and rec["description"] == p.describe()


@pytest.mark.parametrize("p,shape,text", [
    (rst.Offset(-0.125), None, "offset -0.125 on every pixel"),
    (rst.Gain(0.25), None, "gain ×1.250 on every pixel"),
    (rst.LinfPattern(eps=0.03, pixels=5, seed=7), (1, 8, 8), "L∞ ±0.030 sign pattern #7 on 5 pixels"),
    (rst.LinfPattern(eps=0.03, pixels=64, seed=7), (1, 8, 8), "L∞ ±0.030 sign pattern #7 on every pixel"),
    (rst.Translation(dx=2, dy=-1), None, "shift +2 px right, -1 px down"),
    # grid position 128/256 of an 8-pixel side is row 4; a 3×3 patch at column 255/256 is pushed back to 5
    (rst.Occlusion(size=3, row=128, col=255, value=0.5), (1, 8, 8), "3×3 patch of grey 0.500 at row 4, column 5"),
    (rst.Composition((rst.Offset(0.1), rst.Rotation(-2.5))), None, "offset +0.100 on every pixel then rotation -2.50°"),
], ids=["offset", "gain", "linf-some-pixels", "linf-all-pixels", "translation", "occlusion-in-pixels", "composition"])
def test_descriptions_state_the_parameters(p, shape, text):
    assert p.describe(shape) == text


@pytest.mark.parametrize("name", sorted(ALL))
def test_minimal_example_is_the_identity(name):
    p = find(ALL[name], lambda p: True)
    assert p.is_identity, p
    assert torch.equal(p.apply(X), X)


def test_linf_bound_and_pixel_count():
    @settings(max_examples=30)
    @given(rst.linf_perturbations(eps=0.03, max_pixels=20))
    def check(p):
        x = torch.full((2, 1, 8, 8), 0.5)
        d = p.apply(x) - x
        assert float(d.abs().max()) <= 0.03 + 1e-6
        assert int((d[0] != 0).sum()) <= p.pixels
        assert torch.equal(d[0], d[1])  # the same pattern on every image
    check()


def test_fewer_pixels_is_a_subset_of_more():
    x = torch.full((1, 1, 8, 8), 0.5)
    small = rst.LinfPattern(0.1, 5, seed=7).apply(x) != x
    large = rst.LinfPattern(0.1, 20, seed=7).apply(x) != x
    assert int(small.sum()) == 5 and int(large.sum()) == 20
    assert bool((large | ~small).all())


def test_l2_norm_bound():
    @settings(max_examples=30)
    @given(rst.l2_perturbations(eps=0.5))
    def check(p):
        x = torch.full((2, 1, 8, 8), 0.5)
        assert float((p.apply(x) - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
    check()


def test_descriptions_in_human_terms():
    shape = (1, 1, 8, 8)
    assert rst.Offset(0.118).describe() == "offset +0.118 on every pixel"
    assert rst.PixelChanges(((0, 64, 160, 0.5),)).describe(shape) == "pixel (2, 5) +0.500"
    assert rst.Occlusion(3, 255, 0, 1.0).describe(shape) == "3×3 patch of grey 1.000 at row 5, column 0"
    assert rst.LinfPattern(0.05, 1 << 20, 3).describe(shape) == "L∞ ±0.050 sign pattern #3 on every pixel"
    assert rst.LinfPattern(0.05, 4, 3).describe(shape) == "L∞ ±0.050 sign pattern #3 on 4 pixels"
    assert rst.Composition((rst.Offset(0.1), rst.Rotation(-2.5))).describe() == \
        "offset +0.100 on every pixel then rotation -2.50°"
    assert rst.Translation(1, -2).describe() == "shift +1 px right, -2 px down"


def test_geometric_ops_move_what_they_say():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 3, 3] = 1.0
    shifted = rst.Translation(2, 1).apply(x)
    assert float(shifted[..., 4, 5]) == 1.0 and float(shifted.sum()) == 1.0
    x = torch.zeros(1, 1, 16, 16)
    x[..., 8, 8] = 1.0
    blurred = rst.Blur(1.0).apply(x)  # far from the border: the mass stays
    assert float(blurred[..., 3, 3]) < 1.0 and float(blurred.sum()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(rst.Rotation(360.0).apply(RGB), RGB, atol=1e-4)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: rst.offsets(max_offset=-0.1), "max_offset: expected a number > 0 and <= 1 but got -0.1"),
    (lambda: rst.offsets(max_offset=2.0), "max_offset: expected a number > 0 and <= 1 but got 2.0"),
    (lambda: rst.linf_perturbations(eps="0.1"), "eps: expected a finite number but got '0.1'"),
    (lambda: rst.linf_perturbations(eps=0.1, max_pixels=0), "max_pixels: expected an integer >= 1 but got 0"),
    (lambda: rst.offsets(max_offset=0.1, resolution=0.5), "resolution: expected a step no larger than"),
    (lambda: rst.translations(max_shift=1.5), "max_shift: expected an integer >= 1 but got 1.5"),
    (lambda: rst.compositions(), "compositions: expected at least one strategy but got none"),
    (lambda: rst.compositions(rst.Offset(0.1)), "compositions: expected hypothesis strategies but got Offset"),
    (lambda: rst.directed_perturbations(direction=torch.ones(3), eps=0.1, norm="l1"),
     "norm: expected 'linf' or 'l2' but got 'l1'"),
    (lambda: rst.get_strategy("offset"), "strategy: expected one of .* but got 'offset'"),
    (lambda: rst.get_strategy("offsets", eps=0.1), "strategy offsets: does not take eps; it accepts: max_offset"),
    (lambda: rst.get_strategy("linf_perturbations"), "strategy linf_perturbations: expected eps"),
], ids=["negative", "above-box", "string", "no-pixels", "coarse", "float-shift", "empty-compose",
        "not-a-strategy", "norm", "unknown-name", "unknown-option", "missing-eps"])
def test_bad_arguments(call, match):
    with pytest.raises(InvalidArgument, match=match):
        call()


def test_registry_names_are_the_strategies():
    for name, fn in rst.STRATEGIES.items():
        assert fn.__name__ == name and name.endswith("s")
        strategy = rst.get_strategy(name, **({"eps": 0.1} if "eps" in fn.__code__.co_varnames else {}))
        assert isinstance(strategy, st.SearchStrategy)
