"""Failing perturbations leave their images and a JSON file; inside a search only the final, minimal one does."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from robtest.errors import InvarianceError
from robtest.fuzz import assert_invariant, fuzz
from robtest.strategies import Offset

from ._models import MeanThreshold


def test_assert_invariant_writes_images_and_json(constant_images, tmp_path):
    y = torch.zeros(6, dtype=torch.long)
    with pytest.raises(InvarianceError) as info:
        assert_invariant(MeanThreshold(0.4), constant_images, y, Offset(0.15), artifacts=tmp_path)
    err = info.value
    # The numbers behind the message, recomputed: which points the offset flips and the loss it reaches.
    model, perturbed = MeanThreshold(0.4), (constant_images + 0.15).clamp(0, 1)
    with torch.no_grad():
        logits = model(perturbed)
    assert err.check.flipped == tuple((logits.argmax(1) != y).nonzero().flatten().tolist()) == (1, 2, 3, 4)
    assert err.check.n == 6 and err.check.excluded == 0
    assert err.check.loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert str(err).startswith("offset +0.150 on every pixel flips 4 of 6 points (0→1 ×4; indices [1, 2, 3, 4])")
    folder = err.artifacts
    assert folder is not None and folder.parent == tmp_path
    for name in ("original.png", "perturbed.png", "difference.png"):
        with Image.open(folder / name) as im:
            assert im.size[0] >= 4 * 64  # four flipped images side by side, enlarged from 8 to 64 pixels
    rec = json.loads((folder / "failure.json").read_text())
    assert rec["flipped"] == [1, 2, 3, 4] and rec["flips"] == 4 and rec["n"] == 6
    assert rec["perturbation"] == {"kind": "offsets", "description": "offset +0.150 on every pixel", "offset": 0.15}
    assert rec["difference_scale"] == pytest.approx(0.15, abs=1e-6)
    assert str(folder) in str(err)


def test_no_artifacts_when_it_holds_or_not_asked(constant_images, tmp_path):
    y = torch.zeros(6, dtype=torch.long)
    assert assert_invariant(MeanThreshold(0.4), constant_images, y, Offset(0.05), artifacts=tmp_path).flips == 0
    with pytest.raises(InvarianceError) as info:
        assert_invariant(MeanThreshold(0.4), constant_images, y, Offset(0.15))
    assert info.value.artifacts is None
    assert list(tmp_path.iterdir()) == []


def test_subset_counts_and_shows_only_those_points(constant_images, tmp_path):
    y = torch.zeros(6, dtype=torch.long)
    with pytest.raises(InvarianceError) as info:
        assert_invariant(MeanThreshold(0.4), constant_images, y, Offset(0.15), subset=[0, 2, 5], artifacts=tmp_path)
    assert info.value.check.flipped == (2,) and info.value.check.n == 3
    rec = json.loads((info.value.artifacts / "failure.json").read_text())
    assert rec["shown"] == [1]  # row 1 of the subset is point 2


def test_fuzz_saves_only_the_minimal_example(constant_images, tmp_path):
    r = fuzz(MeanThreshold(0.4), constant_images, torch.zeros(6, dtype=torch.long), "offsets", database=None,
             max_examples=50, artifacts=tmp_path, key="k")
    assert not r.passed and r.artifacts is not None
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1
    rec = json.loads((folders[0] / "failure.json").read_text())
    assert rec["description"] == r.minimal.describe() == r.check.description
    assert f"images: {r.artifacts}" in r.message()
