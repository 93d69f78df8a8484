"""``certify``: which points no perturbation in the ball can misclassify, proven; the public function.

Soundness in floating point. The bounds are bounds of the network in exact arithmetic with the model's
weights: every bound is computed in float64 (the float32 weights are exact in float64), where rounding moves
a bound by about 1e-13 of the logits' scale. From each margin's lower bound a slack of
``SLACK·(1 + max_j |z_j(x0)|)`` (1e-5 of the logits' scale) is then subtracted, which covers the float64
rounding many times over and the float32 model's own rounding at the sizes a bound engine handles: a
certified point has every margin above the slack. The MILP's answers carry their own tolerance
(:data:`robtest.certify.milp.TOLERANCE`).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import torch
from torch import nn

from robtest.attacks._driver import check_batch, check_bounds, check_eps, first_forward
from robtest.attacks._norms import get_norm
from robtest.attacks.pgd import pgd
from robtest.certify import milp as _milp
from robtest.certify.ball import Ball
from robtest.certify.crown import alpha_margins, crown_bounds, crown_margins
from robtest.certify.graph import Graph, trace
from robtest.certify.ibp import ibp_bounds, margin_spec, margins_from_bounds
from robtest.diagnostics import isolated
from robtest.errors import AttackInvariantError, InvalidArgument, ModelOutputError
from robtest.models import eval_mode, model_device
from robtest.rng import SampleRNG

__all__ = ["METHODS", "SLACK", "Certificate", "certify", "outcomes"]

METHODS = ("ibp", "crown", "alpha-crown", "milp")
#: the outward margin subtracted from every bound, relative to 1 + the largest |logit| at the clean point
SLACK = 1e-5


class Certificate(NamedTuple):
    """What :func:`certify` proved, per sample (on the device of ``x``).

    ``certified`` (N,) bool: no input in the ball changes the prediction away from ``y``. ``lower`` (N, C)
    float64: a lower bound of ``z_y − z_j`` over the ball, less the slack (+inf at j = y; for ``method="milp"``
    the CROWN bounds, the MILP answers yes or no). ``falsified`` (N,) bool: the MILP found an input in the ball
    that the model (in float64) misclassifies (always False for IBP and CROWN, which only prove).
    ``adversarial`` (N, ...) like ``x``, for ``method="milp"``: that input where ``falsified``, ``x`` elsewhere
    (None for IBP and CROWN); re-predict it with the model to count it as broken. ``seconds``: time per
    sample of the whole call.
    """

    certified: torch.Tensor
    lower: torch.Tensor
    falsified: torch.Tensor
    adversarial: torch.Tensor | None
    seconds: float


def certify(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float | torch.Tensor, norm: str = "linf",
            bounds: tuple[float, float] = (0.0, 1.0), method: str = "crown", time_limit: float = 10.0,
            batch_size: int = 64) -> Certificate:
    """Prove per sample that every input in the ε-ball (L∞ or L2, in pixel units, intersected with the box
    ``bounds``) keeps the model's prediction at ``y``.

    ``method``: "ibp" (interval bound propagation: fastest, loosest except on IBP-trained models), "crown"
    (back-substituted linear bounds, Zhang et al. 2018, never looser than IBP here), "alpha-crown" (CROWN with
    the ReLUs' lower slopes optimised for the margins, Xu et al. 2021; never looser than CROWN), or "milp"
    (exact for ReLU networks: CROWN first, a short PGD for counterexamples, then a mixed-integer program per
    remaining sample with ``time_limit`` seconds, which also finds counterexamples). A point neither
    certified nor falsified is *unknown*: no method claims more than it proves. Supported models are traced
    with torch.fx (see :mod:`robtest.certify.graph`); any other layer raises
    :class:`~robtest.errors.UnsupportedModelError`.

    The model is evaluated as in eval mode (BatchNorm's running statistics; a model in train mode gets a
    ``ModelStateWarning``) and is left as it came: same mode, device, dtype and ``requires_grad``. The bounds
    run on the model's device in float64 (see the module docstring for the slack that makes them sound in
    floating point).

    Args:
        model: maps (N, ...) inputs in ``bounds`` to logits (N, C).
        x: inputs (N, ...) in ``bounds``; y: labels (N,).
        eps: radius in pixel units, a number or a per-sample tensor (N,).
        batch_size: samples bounded together (memory grows with it).

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.eye(2)), model[1].bias.zero_()
    >>> x, y = torch.tensor([[0.8, 0.2], [0.55, 0.45]]), torch.tensor([0, 0])
    >>> cert = certify(model, x, y, eps=0.1)  # the margin x₀ − x₁ falls by 2ε at worst
    >>> cert.certified.tolist(), [round(v, 4) for v in cert.lower[:, 1].tolist()]
    ([True, False], [0.4, -0.1])
    """
    lo, hi = check_bounds(bounds)
    nrm = get_norm(norm)
    check_batch(x, y, (lo, hi))
    check_eps(eps, nrm, (lo, hi), x)
    if method not in METHODS:
        raise InvalidArgument(f"method: expected one of {', '.join(METHODS)} but got {method!r}")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise InvalidArgument(f"time_limit: expected a number of seconds > 0 but got {time_limit!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size: expected an integer >= 1 but got {batch_size!r}")
    start = time.perf_counter()
    device = model_device(model) or x.device
    n = x.shape[0]
    xd, yd = x.detach().to(device), y.to(device)
    e = torch.as_tensor(eps, dtype=torch.float64, device=device).expand(n) if n else torch.zeros(0, device=device)
    with eval_mode(model), torch.no_grad():
        if n == 0:
            empty = torch.zeros(0, dtype=torch.bool, device=x.device)
            return Certificate(empty, torch.zeros(0, 0, dtype=torch.float64, device=x.device), empty,
                               x.detach().clone() if method == "milp" else None, 0.0)
        first_forward(model, xd[:2])  # the model's own errors first, data mismatches said in the user's terms
        graph = trace(model, xd[:2])
        classes = _classes(graph, yd)
        lowers, boxes = [], []
        for s in range(0, n, batch_size):
            low, node_bounds, ball = _bound_batch(graph, xd[s:s + batch_size], yd[s:s + batch_size],
                                                  e[s:s + batch_size], nrm.name, (lo, hi), method, classes)
            lowers.append(low)
            boxes.append((node_bounds, ball))
        lower = torch.cat(lowers)
        certified = (lower > 0).all(1)
        falsified = torch.zeros_like(certified)
        adversarial = None
        if method == "milp":
            adversarial = xd.clone()
            _run_milp(model, graph, xd, yd, e, nrm.name, (lo, hi), lower, certified, falsified, adversarial, boxes,
                      batch_size, time_limit)
            adversarial = adversarial.to(x.device)
    seconds = (time.perf_counter() - start) / n
    return Certificate(certified.to(x.device), lower.to(x.device), falsified.to(x.device), adversarial, seconds)


def _classes(graph: Graph, y: torch.Tensor) -> int:
    if len(graph.out_shape) != 1:
        raise ModelOutputError(f"model output: expected logits of shape (N, num_classes) but the traced model "
                               f"returns (N, {', '.join(map(str, graph.out_shape))})")
    c = graph.out_shape[0]
    if y.numel() and int(y.max()) >= c:
        raise InvalidArgument(f"y: expected labels in 0..{c - 1} (the model has {c} outputs) but got {int(y.max())}")
    return c


def _bound_batch(graph: Graph, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, norm: str,
                 box: tuple[float, float], method: str, classes: int):
    x64 = x.to(torch.float64)
    ball = Ball(x64, eps, norm, box)
    spec = margin_spec(y, classes, x64)
    if method == "ibp":
        node_bounds = ibp_bounds(graph, ball)
        low = margins_from_bounds(graph, node_bounds, spec, ball)
    else:
        node_bounds = crown_bounds(graph, ball)
        low = (alpha_margins if method == "alpha-crown" else crown_margins)(graph, ball, spec, node_bounds)
    z = graph.forward(x64)
    slack = SLACK * (1 + z.abs().amax(1, keepdim=True))
    low = low - slack
    low[torch.arange(len(y), device=y.device), y] = math.inf
    return low, node_bounds, ball


def _run_milp(model, graph, x, y, eps, norm, box, lower, certified, falsified, adversarial, boxes, batch_size,
              time_limit) -> None:
    todo = (~certified).nonzero().squeeze(1)
    if todo.numel() == 0:
        return
    hit, found = _attacked(model, graph, x[todo], y[todo], eps[todo], norm, box, todo)
    falsified[todo] = hit
    adversarial[todo[hit]] = found[hit].to(x.dtype)
    net = _milp.MilpNet(graph, x.device)
    z = graph.forward(x.to(torch.float64))
    scale = 1 + z.abs().amax(1)
    for i in todo[~falsified[todo]].tolist():
        node_bounds, ball = boxes[i // batch_size]
        k = i % batch_size
        per_op = [(lo[k].flatten().cpu().numpy(), hi[k].flatten().cpu().numpy()) for lo, hi in node_bounds]
        order = [j for j in lower[i].argsort().tolist() if lower[i, j] <= 0]
        res = _milp.verify_sample(net, x[i:i + 1].to(torch.float64), int(y[i]), float(eps[i]), norm,
                                  (ball.lower[k].flatten().cpu().numpy(), ball.upper[k].flatten().cpu().numpy()),
                                  per_op, order, time_limit=time_limit,
                                  tolerance=_milp.TOLERANCE * float(scale[i]))
        certified[i] = res.status == _milp.CERTIFIED
        falsified[i] = res.status == _milp.FALSIFIED
        if res.counterexample is not None:
            adversarial[i] = torch.as_tensor(res.counterexample, device=x.device).view_as(x[i]).to(x.dtype)


#: steps of the margin-loss PGD that looks for counterexamples before the MILP (most are found so, cheaply)
PRESEARCH_STEPS = 20


def _attacked(model, graph: Graph, x, y, eps, norm, box, ids) -> tuple[torch.Tensor, torch.Tensor]:
    """Which points a short PGD misclassifies, judged in float64 through the graph after putting its example
    back into the ball in float64 (the float32 attack may step outside by an ulp); and the examples."""
    with isolated():  # a search inside the exact mode: its diagnostics are not the user's evaluation
        xa = pgd(model, x, y, eps=eps.to(x.dtype), norm=norm, steps=PRESEARCH_STEPS, loss="margin", bounds=box,
                 generator=SampleRNG(0, ids))
    x0 = x.to(torch.float64)
    ball = Ball(x0, eps, norm, box)
    xa = xa.to(torch.float64)
    if norm == "l2":
        d = (xa - x0).flatten(1)
        size = d.norm(dim=1, keepdim=True)
        d = d * torch.where(size > eps[:, None], eps[:, None] / size.clamp(min=1e-300), torch.ones_like(size))
        xa = x0 + d.view_as(x0)
    xa = torch.maximum(torch.minimum(xa, ball.upper), ball.lower)
    z = graph.forward(xa)
    margin = z.gather(1, y[:, None]) - z
    margin[torch.arange(len(y), device=y.device), y] = math.inf
    return (margin <= 0).any(1), xa


def outcomes(certified: torch.Tensor, broken: torch.Tensor) -> torch.Tensor:
    """The three-way outcome per sample: 1 certified, -1 broken (an attack or the MILP found an adversarial
    input), 0 unknown. A point both certified and broken is a bug in robtest (or a model whose float32
    rounding exceeds the slack) and raises :class:`~robtest.errors.AttackInvariantError`.

    >>> outcomes(torch.tensor([True, False, False]), torch.tensor([False, True, False])).tolist()
    [1, -1, 0]
    """
    both = certified & broken
    if bool(both.any()):
        i = int(both.nonzero()[0])
        raise AttackInvariantError(f"{int(both.sum())} point(s) both certified and broken (first: sample {i}); "
                                   "this is a robtest bug, please report it")
    return certified.to(torch.int8) - broken.to(torch.int8)
