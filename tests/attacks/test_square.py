"""Square: sound against the exact answer, as strong as torchattacks' Square with the same queries, the p
schedule, gradient-free, reproducible from the generator alone, early stop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.attacks import square
from robtest.attacks.square import p_schedule
from robtest.errors import InvalidArgument


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_p_halves_on_the_papers_schedule_rescaled_to_the_budget():
    # halvings after 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000 queries
    assert [p_schedule(0.8, i, 10_000) for i in (10, 11, 50, 51, 8000, 8001)] == [
        0.8, 0.4, 0.4, 0.2, 0.8 / 2**8, 0.8 / 2**9]
    assert p_schedule(0.8, 51, 1000) == p_schedule(0.8, 510, 10_000)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_sound_against_the_exact_answer_and_as_strong_as_torchattacks(exact_mlp, norm):
    torchattacks = pytest.importorskip("torchattacks")
    e = exact_mlp
    eps = e.eps if norm == "linf" else 0.6
    queries = 200
    ours = square(e.model, e.x, e.y, eps=eps, norm=norm, queries=queries, generator=_gen())
    if norm == "linf":
        assert not (e.fooled(ours) & e.robust).any()
    theirs = torchattacks.Square(e.model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, n_queries=queries,
                                 seed=0)(e.x, e.y)
    # A random search: two draws of it differ by a few boundary points, hence 3 of the 50.
    assert e.accuracy(ours) <= e.accuracy(theirs) + 3 / len(e.y) + 1e-9, (e.accuracy(ours), e.accuracy(theirs))


class _NoGrad(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls, self.rows = model, 0, 0

    def forward(self, x):
        assert not torch.is_grad_enabled(), "Square asked for gradients"
        self.calls += 1
        self.rows += x.shape[0]
        return self.model(x)


def test_forward_passes_only_and_a_fooled_point_stops(trained_mlp):
    model, (x, y) = trained_mlp
    x, y = x[:32], y[:32]
    counted = _NoGrad(model)
    queries = 100
    x_adv = square(counted, x, y, eps=0.3, queries=queries, generator=_gen())
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y
    assert bool(fooled.all())  # ε = 0.3 breaks every digit of this MLP
    # one query per point and step while it is not fooled: far fewer rows than the whole budget
    assert counted.calls <= queries and counted.rows < 32 * queries / 4


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_reproducible_from_the_generator_alone(trained_mlp, norm):
    model, (x, y) = trained_mlp
    x, y = x[:32], y[:32]
    eps = 0.05 if norm == "linf" else 0.3
    state = torch.get_rng_state()
    a, b, c = (square(model, x, y, eps=eps, norm=norm, queries=50, generator=_gen(s)) for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never drawn from


@pytest.mark.parametrize("shape", [(6, 20), (6, 3, 5), (6, 2, 5, 4)], ids=["vector", "3d", "image"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_any_input_shape(shape, norm):
    torch.manual_seed(0)
    d = int(torch.tensor(shape[1:]).prod())
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, 4)).eval()
    x = torch.rand(shape, generator=_gen())
    y = torch.arange(6) % 4
    eps = 0.1 if norm == "linf" else 0.5
    x_adv = square(model, x, y, eps=eps, norm=norm, queries=30, generator=_gen())
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert x_adv.shape == x.shape and bool((size <= eps + 1e-5).all())


@pytest.mark.parametrize("kw,match", [
    ({"queries": 0}, "queries: expected an integer >= 1"),
    ({"p_init": 0.0}, r"p_init: expected a fraction in \(0, 1\]"),
], ids=["queries", "p_init"])
def test_bad_arguments(trained_mlp, kw, match):
    model, (x, y) = trained_mlp
    with pytest.raises(InvalidArgument, match=match):
        square(model, x[:2], y[:2], eps=0.1, **kw)


class _Flat(nn.Module):
    """Constant logits (class 0 by 5) whatever the input: no candidate is ever better, so every query starts
    from the initial stripes; the inputs of each query are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return x.flatten(1)[:, :2] * 0 + torch.tensor([5.0, 0.0])


def test_linf_windows_draw_a_sign_per_channel():
    """Each L∞ query sets its square window to x ± ε with one random sign per channel (Andriushchenko et al.,
    Algorithm 2), not one sign for all channels: over 40 queries of 3-channel images, some window holds
    channels moved in opposite directions."""
    model = _Flat()
    x = torch.full((4, 3, 8, 8), 0.5)
    eps = 0.1
    square(model, x, torch.zeros(4, dtype=torch.long), eps=eps, queries=41, generator=torch.Generator().manual_seed(0))
    init, queries = model.inputs[0], model.inputs[1:]
    assert len(queries) == 40
    windows = mixed = 0
    for cand in queries:
        delta = cand - x
        assert bool(torch.isclose(delta.abs(), torch.tensor(eps)).all())  # every pixel of every channel at ±ε
        changed = (cand != init).any(dim=1, keepdim=True).expand_as(cand)  # the window's pixels, per image
        for i in range(4):
            signs = delta[i][changed[i]].view(3, -1).sign()  # (channel, pixel) over the window
            assert signs.shape[1] > 0  # a query that changes nothing is drawn again
            assert bool((signs == signs[:, :1]).all())  # one colour per window: a sign per channel
            windows += 1
            mixed += int(signs[:, 0].unique().numel() > 1)
    # three independent signs differ with probability 3/4 (one shared sign: never)
    assert windows == 160 and mixed >= 0.6 * windows, mixed
