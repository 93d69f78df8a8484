"""robtest's FGSM and PGD against an independent implementation (torchattacks) on the same model and points."""

from __future__ import annotations

import pytest
import torch

from robtest.attacks import fgsm, pgd

torchattacks = pytest.importorskip("torchattacks")


@pytest.fixture(scope="module")
def setup(trained_mlp):
    model, (x, y) = trained_mlp
    return model, x[:200], y[:200]


def test_fgsm_equals_torchattacks(setup):
    model, x, y = setup
    theirs = torchattacks.FGSM(model, eps=0.1)(x, y)
    torch.testing.assert_close(fgsm(model, x, y, eps=0.1), theirs)


def test_pgd_linf_equals_torchattacks_without_random_start(setup):
    model, x, y = setup
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.02, steps=10, random_start=False)(x, y)
    ours = pgd(model, x, y, eps=0.1, step_size=0.02, steps=10, random_start=False, early_stop=False)
    torch.testing.assert_close(ours, theirs)


def test_pgd_l2_matches_torchattacks_without_random_start(setup):
    model, x, y = setup
    theirs = torchattacks.PGDL2(model, eps=1.0, alpha=0.2, steps=10, random_start=False)(x, y)
    ours = pgd(model, x, y, eps=1.0, norm="l2", step_size=0.2, steps=10, random_start=False, early_stop=False)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_pgd_with_random_start_equals_torchattacks_from_the_same_draws(setup):
    # torchattacks draws its start with uniform_(−ε, ε) from the global generator; robtest's start, (2u − 1)·ε
    # with u = rand(generator), reads the same CPU stream: seeded alike, both start, and so end, at the same points.
    model, x, y = setup
    torch.manual_seed(0)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.01, steps=20, random_start=True)(x, y)
    ours = pgd(model, x, y, eps=0.1, step_size=0.01, steps=20, early_stop=False,
               generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours, theirs)
