"""CROWN (Zhang et al., NeurIPS 2018): linear bounds back-substituted to the input, layer by layer.

Every op that feeds a ReLU gets bounds before the ReLU is relaxed: its interval from the (already tightened)
boxes of its inputs, intersected with IBP's box, and for the neurons still unstable the back-substituted
bounds of ``±e_k`` (:func:`~robtest.certify.backsub.bound_neurons`). The margins are bounded by
back-substitution from the logits, and the larger of that and IBP's bound from the same boxes is kept: both
are sound, so CROWN here never certifies fewer points than IBP (on IBP-trained networks plain CROWN can be
looser than IBP).

α-CROWN (:func:`alpha_margins`) then optimises the ReLUs' lower slopes for the margins by gradient ascent.
"""

from __future__ import annotations

import torch

from robtest.certify.backsub import BUDGET, adaptive_alpha, backward, bound_neurons
from robtest.certify.ball import Ball
from robtest.certify.graph import Graph, ReLU
from robtest.certify.ibp import ibp_bounds, interval, leading_affine, margins_from_bounds

__all__ = ["alpha_margins", "crown_bounds", "crown_margins"]

Bounds = list[tuple[torch.Tensor, torch.Tensor]]


def crown_bounds(graph: Graph, ball: Ball, *, budget: int = BUDGET) -> Bounds:
    """A box for every op over the ball, each inside IBP's; pre-activations tightened by back-substitution."""
    ibp = ibp_bounds(graph, ball)
    pre = graph.feeds_relu()
    if ball.norm == "l2":  # IBP bounded these exactly already (the affine map from the input over the ball)
        pre -= leading_affine(graph)
    bounds: Bounds = [ball.box()]
    for i, op in enumerate(graph.ops[1:], 1):
        lo, hi = interval(op, bounds)
        lo, hi = torch.maximum(lo, ibp[i][0]), torch.minimum(hi, ibp[i][1])
        if i in pre:
            unstable = ((lo < 0) & (hi > 0)).flatten(1).any(0)
            idx = unstable.nonzero().squeeze(1)
            if idx.numel():
                l_c, h_c = bound_neurons(graph, i, idx, bounds, ball, budget=budget)
                lo, hi = lo.flatten(1).clone(), hi.flatten(1).clone()
                lo[:, idx] = torch.maximum(lo[:, idx], l_c)
                hi[:, idx] = torch.minimum(hi[:, idx], h_c)
                lo, hi = lo.view(-1, *op.shape), hi.view(-1, *op.shape)
        bounds.append((lo, hi))
    return bounds


def crown_margins(graph: Graph, ball: Ball, spec: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """Lower bounds of ``spec · logits`` (B, K): back-substitution or IBP from ``bounds``, whichever is higher."""
    back = backward(graph, len(graph) - 1, spec, bounds, ball)
    return torch.maximum(back, margins_from_bounds(graph, bounds, spec, ball))


#: gradient steps and step size of α-CROWN's slope optimisation
ALPHA_STEPS, ALPHA_LR = 20, 0.1


def alpha_margins(graph: Graph, ball: Ball, spec: torch.Tensor, bounds: Bounds, *, steps: int = ALPHA_STEPS,
                  lr: float = ALPHA_LR) -> torch.Tensor:
    """:func:`crown_margins` with the lower slopes of the unstable ReLUs optimised per sample and margin
    (α-CROWN, Xu et al. 2021), for the margins only (the pre-activation boxes stay CROWN's). Every slope in
    [0, 1] gives a sound bound, so the best bound met along the way is kept; it is never below CROWN's.

    The slopes are optimised with Adam on ``−Σ lower bounds`` through :func:`torch.autograd.grad`, so the
    model's parameters get no ``.grad``.
    """
    best = crown_margins(graph, ball, spec, bounds)
    relus = [i for i, op in enumerate(graph.ops) if isinstance(op, ReLU)]
    if not relus or steps < 1:
        return best
    k = spec.shape[1]
    alphas = {}
    for i in relus:
        lo, hi = bounds[graph.ops[i].inputs[0]]
        alphas[i] = adaptive_alpha(lo, hi)[:, None].expand(-1, k, *lo.shape[1:]).clone().requires_grad_(True)
    params = list(alphas.values())
    opt = torch.optim.Adam(params, lr=lr, maximize=True)
    last = len(graph) - 1
    with torch.enable_grad():
        for _ in range(steps):
            low = backward(graph, last, spec, bounds, ball, alphas)
            best = torch.fmax(best, low.detach())  # fmax: a NaN from a degenerate step never wins
            grads = torch.autograd.grad(low.sum(), params, allow_unused=True)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            opt.step()
            with torch.no_grad():
                for p in params:
                    p.clamp_(0.0, 1.0)
        low = backward(graph, last, spec, bounds, ball, alphas)
    return torch.fmax(best, low.detach())
