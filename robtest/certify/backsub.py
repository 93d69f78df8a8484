"""Back-substitution of linear bounds through the graph (the engine of CROWN, Zhang et al., NeurIPS 2018).

A lower bound of ``a·v_t`` (a linear function of op t's output) is carried backwards op by op: through an
affine op exactly (``a·(Lx + b) = (aL)·x + a·b``), through a sum to both branches, and through a ReLU by its
linear relaxation given the bounds ``[l, u]`` of its input: for an unstable neuron (l < 0 < u) the upper line
``u(z − l)/(u − l)`` and a lower line ``α·z`` with α ∈ [0, 1] (CROWN's adaptive choice: α = 1 when u ≥ −l,
else 0). Coefficients ≥ 0 take the lower line, coefficients < 0 the upper one, so that the result stays a
lower bound. At the input the linear function is minimised over the ball (:meth:`Ball.min_linear`).
"""

from __future__ import annotations

import torch

from robtest.certify.ball import Ball
from robtest.certify.graph import Affine, Graph, Input, ReLU, Sum

__all__ = ["BUDGET", "adaptive_alpha", "backward", "bound_neurons", "relu_lines"]

#: elements of one coefficient tensor (B, K, *shape) before the rows are split in chunks (2**24 float64: 128 MiB)
BUDGET = 2**24

Bounds = list[tuple[torch.Tensor, torch.Tensor]]


def adaptive_alpha(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """CROWN-Ada's lower slope of an unstable ReLU: 1 when u ≥ −l (the smaller area), else 0."""
    return (hi >= -lo).to(lo.dtype)


def relu_lines(lo: torch.Tensor, hi: torch.Tensor, alpha: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slopes of the lower and upper lines and the upper line's intercept, per neuron (lower slopes ``alpha``
    for the unstable neurons, CROWN's adaptive ones by default)."""
    active, unstable = lo >= 0, (lo < 0) & (hi > 0)
    one, zero = torch.ones_like(lo), torch.zeros_like(lo)
    width = torch.where(unstable, hi - lo, one)
    s_up = torch.where(active, one, torch.where(unstable, hi / width, zero))
    b_up = torch.where(unstable, -s_up * lo, zero)
    a = adaptive_alpha(lo, hi) if alpha is None else alpha
    s_lo = torch.where(active, one, torch.where(unstable, a, zero))
    return s_lo, s_up, b_up


def backward(graph: Graph, target: int, a: torch.Tensor, bounds: Bounds, ball: Ball,
             alphas: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    """A lower bound of ``a·v_target`` over the ball: ``a`` (B, K, *shape of op target) → (B, K).

    ``bounds[i]`` must hold for the input of every ReLU between the target and the network input.
    ``alphas`` maps a ReLU op's index to the lower slopes of its unstable neurons, (B, K, *shape) in [0, 1]
    (α-CROWN); any slopes in [0, 1] give a sound bound. CROWN's adaptive slopes where none is given.
    """
    coef: dict[int, torch.Tensor] = {target: a}
    const = a.new_zeros(a.shape[:2])
    for i in range(target, -1, -1):
        c = coef.pop(i, None)
        if c is None:
            continue
        op = graph.ops[i]
        if isinstance(op, Input):
            return const + ball.min_linear(c)
        if isinstance(op, Affine):
            c_in, k = op.back(c)
            const = const + k
            _add(coef, op.inputs[0], c_in)
        elif isinstance(op, Sum):
            for j, s in zip(op.inputs, op.signs, strict=True):
                _add(coef, j, c if s > 0 else -c)
        elif isinstance(op, ReLU):
            lo, hi = bounds[op.inputs[0]]
            s_lo, s_up, b_up = relu_lines(lo[:, None], hi[:, None], None if alphas is None else alphas.get(i))
            pos, neg = c.clamp(min=0), c.clamp(max=0)
            const = const + (neg * b_up).flatten(2).sum(2)
            _add(coef, op.inputs[0], pos * s_lo + neg * s_up)
        else:  # pragma: no cover - the graph holds no other kinds
            raise TypeError(f"backward: unknown op {op!r}")
    return const  # the target does not depend on the input


def _add(coef: dict[int, torch.Tensor], i: int, c: torch.Tensor) -> None:
    coef[i] = c if i not in coef else coef[i] + c


def bound_neurons(graph: Graph, target: int, idx: torch.Tensor, bounds: Bounds, ball: Ball, *,
                  budget: int = BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds (B, len(idx)) of the neurons ``idx`` (flat indices) of op ``target``, by
    back-substitution of ``±e_k``, in chunks of rows that keep every coefficient tensor under ``budget``."""
    op = graph.ops[target]
    n, b = op.numel, len(ball)
    widest = max(o.numel for o in graph.ops[: target + 1])
    per_chunk = max(1, budget // (2 * b * widest))
    lows, highs = [], []
    x0 = ball.x0
    for start in range(0, idx.numel(), per_chunk):
        rows = idx[start:start + per_chunk]
        k = rows.numel()
        eye = torch.zeros(k, n, dtype=x0.dtype, device=x0.device)
        eye[torch.arange(k, device=x0.device), rows] = 1.0
        a = torch.cat([eye, -eye]).view(1, 2 * k, *op.shape).expand(b, 2 * k, *op.shape)
        low = backward(graph, target, a, bounds, ball)
        lows.append(low[:, :k])
        highs.append(-low[:, k:])
    if not lows:
        empty = x0.new_zeros(b, 0)
        return empty, empty
    return torch.cat(lows, 1), torch.cat(highs, 1)

