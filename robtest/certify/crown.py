"""CROWN (Zhang et al., NeurIPS 2018): linear bounds back-substituted to the input, layer by layer.

Every op that feeds a ReLU gets bounds before the ReLU is relaxed: its interval from the (already tightened)
boxes of its inputs, intersected with IBP's box, and for the neurons still unstable the back-substituted
bounds of ``±e_k`` (:func:`~robtest.certify.backsub.bound_neurons`). The margins are bounded by
back-substitution from the logits, and the larger of that and IBP's bound from the same boxes is kept: both
are sound, so CROWN here never certifies fewer points than IBP (on IBP-trained networks plain CROWN can be
looser than IBP).
"""

from __future__ import annotations

import torch

from robtest.certify.backsub import BUDGET, backward, bound_neurons
from robtest.certify.ball import Ball
from robtest.certify.graph import Graph
from robtest.certify.ibp import ibp_bounds, interval, leading_affine, margins_from_bounds

__all__ = ["crown_bounds", "crown_margins"]

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
