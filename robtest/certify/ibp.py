"""Interval bound propagation (IBP; Gowal et al. 2018, Mirman et al. 2018): a box per op, pushed forward.

An affine op maps the box's centre c and radius r to ``L c + b`` and ``|L| r``; a ReLU clips both ends; a
sum adds them. The margins ``z_y − z_j`` are bounded with the last affine op folded into the margin
("elision of the last layer": ``(e_y − e_j)ᵀ L`` is bounded as one linear map instead of bounding each logit
apart; so are any affine ops before it). Every step is differentiable, which IBP training uses.

Under L2 the ops between the input and the first ReLU form one affine map, which is bounded exactly over the
ball (the dual norm with the box, :meth:`Ball.min_linear`) instead of through the ball's bounding box.
"""

from __future__ import annotations

import torch

from robtest.certify.backsub import bound_neurons
from robtest.certify.ball import Ball
from robtest.certify.graph import Affine, Graph, ReLU, Sum

__all__ = ["box_min", "ibp_bounds", "interval", "leading_affine", "margin_spec", "margins_from_bounds"]

Bounds = list[tuple[torch.Tensor, torch.Tensor]]


def interval(op, bounds: Bounds) -> tuple[torch.Tensor, torch.Tensor]:
    """The box of ``op``'s output from the boxes of its inputs."""
    if isinstance(op, Affine):
        lo, hi = bounds[op.inputs[0]]
        mid = op.forward((hi + lo) / 2)
        rad = op.abs_linear((hi - lo) / 2)
        return mid - rad, mid + rad
    if isinstance(op, ReLU):
        lo, hi = bounds[op.inputs[0]]
        return lo.clamp(min=0), hi.clamp(min=0)
    if isinstance(op, Sum):
        (la, ha), (lb, hb) = (bounds[i] for i in op.inputs)
        return (la + lb, ha + hb) if op.signs[1] > 0 else (la - hb, ha - lb)
    raise TypeError(f"interval: unknown op {op!r}")  # pragma: no cover


def leading_affine(graph: Graph) -> set[int]:
    """Ops that are an affine function of the input through affine ops only."""
    chain = {0}
    for i, op in enumerate(graph.ops[1:], 1):
        if isinstance(op, Affine) and op.inputs[0] in chain:
            chain.add(i)
    return chain - {0}


def ibp_bounds(graph: Graph, ball: Ball) -> Bounds:
    """A box ``(lower, upper)`` (B, *shape) for every op over the ball, by interval arithmetic."""
    bounds: Bounds = [ball.box()]
    exact = leading_affine(graph) & graph.feeds_relu() if ball.norm == "l2" else set()
    for i, op in enumerate(graph.ops[1:], 1):
        lo, hi = interval(op, bounds)
        if i in exact:
            idx = torch.arange(op.numel, device=lo.device)
            l_x, h_x = bound_neurons(graph, i, idx, bounds, ball)
            lo = torch.maximum(lo, l_x.view_as(lo))
            hi = torch.minimum(hi, h_x.view_as(hi))
        bounds.append((lo, hi))
    return bounds


def margin_spec(y: torch.Tensor, classes: int, like: torch.Tensor) -> torch.Tensor:
    """Rows ``e_y − e_j`` (B, C, C) on ``like``'s device and dtype; row y is zero.

    >>> margin_spec(torch.tensor([1]), 3, torch.zeros(()))
    tensor([[[-1.,  1.,  0.],
             [ 0.,  0.,  0.],
             [ 0.,  1., -1.]]])
    """
    eye = torch.eye(classes, dtype=like.dtype, device=like.device)
    return eye[y][:, None, :] - eye[None]


def box_min(a: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``min a·v`` over the box [lo, hi]: ``a`` (B, K, *shape), ``lo``/``hi`` (B, *shape) → (B, K)."""
    a = a.flatten(2)
    return (a.clamp(min=0) * lo.flatten(1)[:, None] + a.clamp(max=0) * hi.flatten(1)[:, None]).sum(2)


def margins_from_bounds(graph: Graph, bounds: Bounds, spec: torch.Tensor, ball: Ball) -> torch.Tensor:
    """Lower bounds of ``spec · logits`` (B, K) from the boxes. The affine ops at the end are folded into the
    margins (they compose exactly); the box of the op before them bounds the result, or the ball itself when
    the whole network is affine."""
    coef, const = spec, spec.new_zeros(spec.shape[:2])
    i = len(graph) - 1
    while isinstance(graph.ops[i], Affine):
        coef, k = graph.ops[i].back(coef)
        const = const + k
        i = graph.ops[i].inputs[0]
    return const + (ball.min_linear(coef) if i == 0 else box_min(coef, *bounds[i]))
