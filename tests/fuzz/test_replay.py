"""The example database: a failure found once is replayed first on the next run."""

from __future__ import annotations

import torch
from hypothesis.database import DirectoryBasedExampleDatabase

from robtest.fuzz import fuzz

from ._models import MeanThreshold


def test_second_run_replays_the_failure_first(constant_images, tmp_path):
    db = DirectoryBasedExampleDatabase(tmp_path / "examples")
    y = torch.zeros(6, dtype=torch.long)
    model = MeanThreshold(0.55)  # breaks beyond +0.25 of a ±0.3 range: random draws reach it only now and then

    first = fuzz(model, constant_images, y, "offsets", database=db, key="replay", max_examples=100)
    assert not first.passed and first.first_failure > 1
    assert any(p.is_file() for p in (tmp_path / "examples").rglob("*"))  # hypothesis saved it

    second = fuzz(model, constant_images, y, "offsets", database=db, key="replay", max_examples=100)
    assert second.first_failure == 1                    # the saved failure came first
    assert second.minimal == first.minimal
    assert "a failure saved in the example database failed again first" in second.message()

    # another key (another test) does not see it
    other = fuzz(model, constant_images, y, "offsets", database=db, key="other test", max_examples=100)
    assert other.first_failure > 1



def test_a_replayed_failure_is_shrunk_again_for_a_changed_model(constant_images, tmp_path):
    """Hypothesis does not re-shrink a replayed failure; robtest searches again so the report stays minimal."""
    db = DirectoryBasedExampleDatabase(tmp_path / "examples")
    y = torch.zeros(6, dtype=torch.long)
    old = fuzz(MeanThreshold(0.4), constant_images, y, "offsets", database=db, key="k", max_examples=50)
    assert abs(old.minimal.offset - 0.1) <= 1 / 255 + 1e-9
    # the model changed: it now breaks beyond +0.05, and the old failure (+0.102) still fails
    new = fuzz(MeanThreshold(0.35), constant_images, y, "offsets", database=db, key="k", max_examples=50)
    assert new.first_failure == 1
    assert 0.05 < new.minimal.offset <= 0.05 + 1 / 255 + 1e-9
