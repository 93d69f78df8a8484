"""robtest.rng: per-sample counter-based streams give a sample the same numbers whatever batch it is in."""

from __future__ import annotations

import pytest
import torch

from robtest.rng import SampleRNG, TorchRNG, as_rng, mix32, seed_batch


def test_a_sample_draws_the_same_numbers_in_any_batch():
    a = SampleRNG(7, torch.arange(10))
    b = SampleRNG(7, torch.tensor([9, 4, 2]))
    for draw in ("rand", "randn"):
        x, z = getattr(a, draw)((10, 3, 5)), getattr(b, draw)((3, 3, 5))
        assert torch.equal(x[[9, 4, 2]], z)
    assert torch.equal(a.randint(0, 5, (10, 4))[[9, 4, 2]], b.randint(0, 5, (3, 4)))


def test_take_shares_the_counter_and_rows_copies_it():
    a = SampleRNG(0, torch.arange(6))
    first = a.rand((6, 2))
    sub = a.take(torch.tensor([1, 3]))
    second = sub.rand((2, 2))  # the second draw of samples 1 and 3
    assert not torch.equal(second, first[[1, 3]])
    assert torch.equal(SampleRNG(0, torch.arange(6)).rows(slice(0, 6)).rand((6, 2)), first)
    fresh = SampleRNG(0, torch.arange(6))
    fresh.rand((6, 2))
    assert torch.equal(fresh.rand((6, 2))[[1, 3]], second)  # take() counted on the parent's counter


def test_streams_differ_by_seed_fork_and_draw():
    ids = torch.arange(4)
    base = SampleRNG(0, ids).rand((4, 100))
    assert not torch.equal(base, SampleRNG(1, ids).rand((4, 100)))
    assert not torch.equal(base, SampleRNG(0, ids).fork(1).rand((4, 100)))
    assert SampleRNG(0, ids).fork(1, 2).key != SampleRNG(0, ids).fork(2, 1).key
    assert mix32(1, 2) != mix32(2, 1)


def test_distributions_are_plausible():
    r = SampleRNG(3, torch.arange(200))
    u = r.rand((200, 500))
    z = r.randn((200, 500), dtype=torch.float64)
    k = r.randint(-2, 3, (200, 500))
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.01
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01 and z.dtype == torch.float64
    assert set(k.unique().tolist()) == {-2, -1, 0, 1, 2}


def test_wrong_shapes_are_a_bug_said_plainly():
    with pytest.raises(ValueError, match=r"draw shape: expected \(3, \.\.\.\) for 3 rows but got \(2, 4\)"):
        SampleRNG(0, torch.arange(3)).rand((2, 4))


def test_a_torch_generator_draws_as_before():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    r = as_rng(g1)
    assert isinstance(r, TorchRNG) and r.fork(3).take(torch.tensor([0])) is r
    assert torch.equal(r.rand((3, 2)), torch.rand((3, 2), generator=g2))
    assert torch.equal(r.randint(0, 2, (4,)), torch.randint(0, 2, (4,), generator=g2))


def test_nested_forks_are_keyed_by_the_whole_path():
    # APGD-CE's restart 0 is fork(1).fork(0) of the ensemble's stream, APGD-T's first target's restart 0 is
    # fork(2).fork(1000).fork(0): a fork keyed by the seed alone would give every restart 0 the same starts.
    r = SampleRNG(0, torch.arange(5))
    paths = [(1, 0), (2, 0), (2, 1000, 0), (0,), (1,), (1, 1)]
    draws = []
    for path in paths:
        s = r
        for tag in path:
            s = s.fork(tag)
        draws.append(s.rand((5, 50)))
    for i in range(len(paths)):
        for j in range(i):
            assert not torch.equal(draws[i], draws[j]), (paths[i], paths[j])
    # and the same path draws the same numbers
    assert torch.equal(SampleRNG(0, torch.arange(5)).fork(2).fork(1000).fork(0).rand((5, 50)), draws[2])


def test_rows_retried_after_out_of_memory_draw_what_the_first_attempt_drew():
    parent = SampleRNG(0, torch.arange(6))
    parent.rand((6, 2))  # the batch has drawn once already: its counter is at 1
    first = parent.rows(slice(0, 4))
    a = first.rand((4, 3)), first.randn((4, 3))
    retry = parent.rows(slice(0, 4))  # the same chunk again, after the first attempt ran out of memory
    b = retry.rand((4, 3)), retry.randn((4, 3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])
    fresh = SampleRNG(0, torch.arange(6))
    fresh.rand((6, 2))
    assert torch.equal(fresh.rand((6, 3))[:4], a[0])  # the chunk drew the batch's next numbers


def test_seed_batch_depends_on_the_batch_first_id_and_size():
    def draw(ids):
        seed_batch(0, torch.as_tensor(ids))
        return torch.rand(8)

    state = torch.get_rng_state()
    try:
        a, again = draw([0, 1, 2, 3]), draw([0, 1, 2, 3])
        others = [draw([4, 5, 6, 7]), draw([0, 1, 2]), draw([1, 2, 3, 4])]
        assert torch.equal(a, again)
        assert all(not torch.equal(a, o) for o in others)  # another batch of one size, a shorter batch
        assert not torch.equal(others[0], others[2])
    finally:
        torch.set_rng_state(state)
