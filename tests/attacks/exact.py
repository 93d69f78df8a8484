"""Exact L∞ robustness of a small ReLU network by mixed-integer programming (scipy's HiGHS).

The network is a ``Sequential`` of ``Flatten``, ``Linear`` and ``ReLU``. Each hidden ReLU whose pre-activation
interval [l, u] over the ε-box straddles 0 gets a binary a and the big-M constraints h ≥ z, h ≥ 0, h ≤ u·a,
h ≤ z − l·(1 − a); stable ones are exact linear. For every wrong class j the MILP maximises z_j − z_y; the
point is robust iff every maximum is negative. Computed in float64 from the float32 weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix
from torch import nn

#: the radius and number of points of the shared exact_mlp fixture (tests/conftest.py)
EPS = 0.1
POINTS = 50

#: a maximum within this of 0 is too close to call in float32 and counted apart
TIE = 1e-5


def _layers(model: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    out, relu_after = [], []
    for m in model:
        if isinstance(m, nn.Linear):
            out.append((m.weight.detach().double().numpy(), m.bias.detach().double().numpy()))
        elif isinstance(m, nn.ReLU):
            relu_after.append(len(out) - 1)
        elif not isinstance(m, nn.Flatten):
            raise TypeError(f"exact: only Flatten, Linear and ReLU layers, not {type(m).__name__}")
    if relu_after != list(range(len(out) - 1)):
        raise TypeError("exact: expected a ReLU after every Linear layer but the last")
    return out


def worst_margins(model: nn.Sequential, x: torch.Tensor, y: int, eps: float, bounds=(0.0, 1.0)) -> float:
    """max over the ε-ball (L∞, in the box) and over j ≠ y of z_j − z_y, exactly."""
    layers = _layers(model)
    x0 = x.detach().double().flatten().numpy()
    lo_x, hi_x = np.maximum(x0 - eps, bounds[0]), np.minimum(x0 + eps, bounds[1])
    # Variables: the input, then per hidden layer its post-activations h and one binary per unstable neuron.
    nvar, lb, ub, integ = len(x0), list(lo_x), list(hi_x), [0] * len(x0)
    rows: list[tuple[dict[int, float], float, float]] = []
    prev_idx, prev_lo, prev_hi = list(range(len(x0))), lo_x, hi_x
    prev_const = np.zeros(len(x0))  # a variable index of -1 means the constant in prev_const
    for W, b in layers[:-1]:
        wp, wn = np.clip(W, 0, None), np.clip(W, None, 0)
        lo_k = wp @ prev_lo + wn @ prev_hi + b
        u = wp @ prev_hi + wn @ prev_lo + b
        idx, consts = [], []
        for k in range(W.shape[0]):
            z = {}
            const = b[k]
            for i, v in enumerate(prev_idx):
                if v < 0:
                    const += W[k, i] * prev_const[i]
                elif W[k, i] != 0:
                    z[v] = z.get(v, 0.0) + W[k, i]
            if u[k] <= 0:
                idx.append(-1)
                consts.append(0.0)
                continue
            h = nvar
            nvar += 1
            lb.append(max(lo_k[k], 0.0))
            ub.append(u[k])
            integ.append(0)
            if lo_k[k] >= 0:  # h = z
                rows.append(({**{v: -c for v, c in z.items()}, h: 1.0}, const, const))
            else:
                a = nvar
                nvar += 1
                lb.append(0.0)
                ub.append(1.0)
                integ.append(1)
                rows.append(({**{v: -c for v, c in z.items()}, h: 1.0}, const, np.inf))  # h ≥ z
                rows.append(({h: 1.0, a: -u[k]}, -np.inf, 0.0))  # h ≤ u·a
                # h ≤ z − l(1 − a)  ⇔  h − z − l·a ≤ const − l
                rows.append(({**{v: -c for v, c in z.items()}, h: 1.0, a: -lo_k[k]}, -np.inf, const - lo_k[k]))
            idx.append(h)
            consts.append(0.0)
        prev_idx, prev_const = idx, np.array(consts)
        prev_lo, prev_hi = np.maximum(lo_k, 0), np.maximum(u, 0)
    A = lil_matrix((len(rows), nvar))
    rl, ru = np.empty(len(rows)), np.empty(len(rows))
    for r, (coef, lo_r, hi_r) in enumerate(rows):
        for v, c in coef.items():
            A[r, v] = c
        rl[r], ru[r] = lo_r, hi_r
    cons = [LinearConstraint(A.tocsr(), rl, ru)] if rows else []
    W, b = layers[-1]
    hid = [i for i, v in enumerate(prev_idx) if v >= 0]
    D, db = W - W[y], b - b[y]
    up = np.clip(D, 0, None) @ prev_hi + np.clip(D, None, 0) @ prev_lo + db
    best = -np.inf
    # One MILP per wrong class, the most promising first (interval bound), until one overtakes y.
    for j in np.argsort(-up):
        if j == y or up[j] <= best:
            continue
        c = np.zeros(nvar)
        c[[prev_idx[i] for i in hid]] = -D[j, hid]  # milp minimises
        res = milp(c, constraints=cons, integrality=np.array(integ), bounds=Bounds(np.array(lb), np.array(ub)),
                   options={"mip_rel_gap": 0})
        if res.status != 0:
            raise RuntimeError(f"exact: MILP failed: {res.message}")
        best = max(best, -res.fun + db[j])
        if best > TIE:
            break
    return float(best)


def exact_robust(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[np.ndarray, int]:
    """Per point: robust exactly (bool array), and how many points were too close to call (|max| ≤ TIE)."""
    m = np.array([worst_margins(model, x[i], int(y[i]), eps) for i in range(x.shape[0])])
    return m < -TIE, int((np.abs(m) <= TIE).sum())


@dataclass(frozen=True)
class Exact:
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    eps: float
    robust: np.ndarray  # exact, per point (MILP)

    def fooled(self, x_adv: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return (self.model(x_adv).argmax(1) != self.y).numpy()

    def accuracy(self, x_adv: torch.Tensor) -> float:
        return float(1 - self.fooled(x_adv).mean())
