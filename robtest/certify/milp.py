"""The exact mode: a mixed-integer linear program per sample (scipy's HiGHS), complete up to a time limit.

The graph's affine ops become sparse matrices once per call; per sample, each op's output is kept as an affine
expression of the MILP variables (the input x, and for each unstable ReLU its output h and a binary a), so
affine ops add no variables. A ReLU with pre-activation bounds [l, u] (from CROWN, sound) is exact when
stable (u ≤ 0: 0; l ≥ 0: z) and otherwise the big-M encoding of Tjeng et al. 2019:
``h ≥ z, h ≥ 0, h ≤ u·a, h ≤ z − l·(1 − a), a ∈ {0, 1}``.

For each wrong class j (the least certain first) the MILP asks for an input in the ball with
``z_y − z_j ≤ τ``. Infeasible: the margin exceeds τ everywhere in the ball. Feasible: its input, clipped to the
ball, is re-evaluated through the graph in float64; a margin ≤ 0 there is a counterexample. Otherwise it asks
again for ``z_y − z_j ≤ −τ``: an answer is a counterexample, none leaves the point unknown (a margin within τ
of 0). Both are feasibility problems, so HiGHS stops at the first input it finds. L∞ balls are the
variables' bounds. The L2 ball is not linear: it is approached from outside, coordinate by coordinate, by
cutting planes (Kelley's method): ``q_i ≥ 2t·δ_i − t²`` (tangents of δ_i², a few fixed t to start) and
``Σ q_i ≤ ε²``, minimising Σ q_i; an input outside the ball adds the tangents through it and solves again.
Any outer approximation is sound for "infeasible".

τ (``TOLERANCE``·(1 + max|z(x0)|)) absorbs HiGHS's feasibility tolerances (1e-7 on each row, 1e-6 on
integrality): "robust" means every margin exceeds τ up to those tolerances, not a float-exact proof. A point
whose least margin lies in (0, τ] finds a candidate that is no counterexample and stays *unknown*.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import Bounds as VarBounds
from scipy.optimize import LinearConstraint, milp

from robtest.certify.graph import Affine, Graph, Input, ReLU, Sum

__all__ = ["CERTIFIED", "FALSIFIED", "MilpNet", "TOLERANCE", "UNKNOWN", "MilpResult", "verify_sample"]

CERTIFIED, UNKNOWN, FALSIFIED = 1, 0, -1
TOLERANCE = 1e-4
#: at most this many rounds of cutting planes per wrong class under L2
MAX_CUTS = 100
#: tangents per side and coordinate in the first outer approximation of the L2 ball
TANGENTS = 4
#: relative gap at which HiGHS may stop minimising the squared distance under L2 (any feasible point will do)
L2_GAP = 0.05


@dataclass(frozen=True)
class MilpResult:
    status: int  # CERTIFIED, UNKNOWN or FALSIFIED
    counterexample: np.ndarray | None  # an input in the ball the graph misclassifies (FALSIFIED only)
    seconds: float


class MilpNet:
    """The graph's affine ops as float64 sparse matrices on the host (computed once, reused per sample)."""

    def __init__(self, graph: Graph, device: torch.device) -> None:
        self.graph, self.device = graph, device
        self.maps: dict[int, tuple[sp.csr_matrix, np.ndarray]] = {}
        for i, op in enumerate(graph.ops):
            if isinstance(op, Affine):
                self.maps[i] = _dense_map(op, device)


def _dense_map(op: Affine, device: torch.device, chunk: int = 256) -> tuple[sp.csr_matrix, np.ndarray]:
    n_in = int(np.prod(op.in_shape))
    cols = []
    for s in range(0, n_in, chunk):
        k = min(chunk, n_in - s)
        basis = torch.zeros(k, n_in, dtype=torch.float64, device=device)
        basis[torch.arange(k, device=device), torch.arange(s, s + k, device=device)] = 1.0
        with torch.no_grad():
            out = op.linear(basis.view(k, *op.in_shape)).reshape(k, -1)
        cols.append(sp.csr_matrix(out.cpu().numpy()))
    lin = sp.vstack(cols).T.tocsr()
    zero = torch.zeros(1, *op.in_shape, dtype=torch.float64, device=device)
    with torch.no_grad():
        off = op.forward(zero).reshape(-1).cpu().numpy()
    return lin, off


def verify_sample(net: MilpNet, x0: torch.Tensor, y: int, eps: float, norm: str, box: tuple[np.ndarray, np.ndarray],
                  bounds: list[tuple[np.ndarray, np.ndarray]], order: list[int], *, time_limit: float,
                  tolerance: float) -> MilpResult:
    """Decide one sample (``x0`` of shape (1, *in), float64): every margin z_y − z_j for j in ``order`` above
    ``tolerance`` in the ball (CERTIFIED), a counterexample (FALSIFIED), or neither in ``time_limit`` seconds.
    ``bounds`` holds each op's flattened box for this sample; ``box`` the input's (ball ∩ data box for L∞,
    ball's bounding box ∩ data box for L2)."""
    start = time.perf_counter()
    deadline = start + time_limit
    prog = _Program(net, box, bounds, l2=norm == "l2", eps=eps, x0=x0.reshape(-1).cpu().numpy())
    for j in order:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return MilpResult(UNKNOWN, None, time.perf_counter() - start)
        row, const = prog.margin_row(y, j)
        status, cex = prog.decide(row, const, tolerance, deadline, net, x0, y, eps)
        if status == FALSIFIED:
            return MilpResult(FALSIFIED, cex, time.perf_counter() - start)
        if status == UNKNOWN:
            return MilpResult(UNKNOWN, None, time.perf_counter() - start)
    return MilpResult(CERTIFIED, None, time.perf_counter() - start)


class _Program:
    """Variables, constraints and the logits' expression for one sample."""

    def __init__(self, net: MilpNet, box, bounds, *, l2: bool, eps: float, x0: np.ndarray) -> None:
        graph = net.graph
        d = int(np.prod(graph.in_shape))
        unstable = {i: (bounds[op.inputs[0]][0] < 0) & (bounds[op.inputs[0]][1] > 0)
                    for i, op in enumerate(graph.ops) if isinstance(op, ReLU)}
        n_bin = sum(int(u.sum()) for u in unstable.values())
        self.d, self.x0, self.eps, self.l2 = d, x0, eps, l2
        self.nvar = d + 2 * n_bin + (d if l2 else 0)
        lb, ub = np.zeros(self.nvar), np.zeros(self.nvar)
        integ = np.zeros(self.nvar)
        lb[:d], ub[:d] = box
        rows: list[sp.csr_matrix] = []
        rl: list[np.ndarray] = []
        ru: list[np.ndarray] = []
        expr: list[tuple[sp.csr_matrix, np.ndarray] | None] = []
        nxt = d
        for i, op in enumerate(graph.ops):
            if isinstance(op, Input):
                expr.append((sp.eye(d, self.nvar, format="csr"), np.zeros(d)))
            elif isinstance(op, Affine):
                lin, off = net.maps[i]
                m, c = expr[op.inputs[0]]  # type: ignore[misc]
                expr.append(((lin @ m).tocsr(), lin @ c + off))
            elif isinstance(op, Sum):
                (ma, ca), (mb, cb) = (expr[k] for k in op.inputs)  # type: ignore[misc]
                s = op.signs[1]
                expr.append(((ma + s * mb).tocsr(), ca + s * cb))
            elif isinstance(op, ReLU):
                m, c = expr[op.inputs[0]]  # type: ignore[misc]
                lo, hi = bounds[op.inputs[0]]
                unst = unstable[i]
                active = (lo >= 0) & ~unst
                k = np.flatnonzero(unst)
                nk = k.size
                h_cols, a_cols = nxt + np.arange(nk), nxt + nk + np.arange(nk)
                nxt += 2 * nk
                lb[h_cols], ub[h_cols] = 0.0, hi[k]
                lb[a_cols], ub[a_cols], integ[a_cols] = 0.0, 1.0, 1
                sel = sp.csr_matrix((np.ones(nk), (np.arange(nk), h_cols)), shape=(nk, self.nvar))
                a_sel = sp.csr_matrix((np.ones(nk), (np.arange(nk), a_cols)), shape=(nk, self.nvar))
                mk = m[k]
                # z − h ≤ −c ;  h − z − l·a ≤ c − l ;  h − u·a ≤ 0
                rows += [(mk - sel).tocsr(), (sel - mk - sp.diags(lo[k]) @ a_sel).tocsr(),
                         (sel - sp.diags(hi[k]) @ a_sel).tocsr()]
                rl += [np.full(nk, -np.inf)] * 3
                ru += [-c[k], c[k] - lo[k], np.zeros(nk)]
                n = op.numel
                keep = sp.diags(active.astype(float))
                place = sp.csr_matrix((np.ones(nk), (k, h_cols)), shape=(n, self.nvar))
                expr.append(((keep @ m + place).tocsr(), np.where(active, c, 0.0)))
            else:  # pragma: no cover
                raise TypeError(f"milp: unknown op {op!r}")
        if l2:
            # q_i ≥ δ_i² through tangents q_i ≥ 2tδ_i − t², and Σ q_i ≤ ε²: an outer approximation of the ball
            q = self.nvar - d + np.arange(d)
            self.q_cols = q
            dl, du = box[0] - x0, box[1] - x0
            lb[q], ub[q] = 0.0, np.maximum(dl * dl, du * du)
            rows.append(sp.csr_matrix((np.ones(d), (np.zeros(d, dtype=int), q)), shape=(1, self.nvar)))
            rl.append(np.array([-np.inf]))
            ru.append(np.array([eps * eps]))
            self.rows, self.rl, self.ru = rows, rl, ru
            for f in np.linspace(-1.0, 1.0, 2 * TANGENTS + 1):
                self._tangents(np.clip(f * eps, dl, du))
        self.lb, self.ub, self.integ = lb, ub, integ
        self.rows, self.rl, self.ru = rows, rl, ru
        self.logits = expr[-1]

    def margin_row(self, y: int, j: int) -> tuple[sp.csr_matrix, float]:
        m, c = self.logits  # type: ignore[misc]
        return (m[y] - m[j]).tocsr(), float(c[y] - c[j])

    def _tangents(self, t: np.ndarray) -> None:
        # q_i ≥ 2 t_i (x_i − x0_i) − t_i²  ⇔  2 t_i x_i − q_i ≤ t_i² + 2 t_i x0_i, one row per coordinate
        d = self.d
        r = np.arange(d)
        m = sp.csr_matrix((np.concatenate([2 * t, -np.ones(d)]), (np.concatenate([r, r]),
                           np.concatenate([r, self.q_cols]))), shape=(d, self.nvar))
        self.rows.append(m)
        self.rl.append(np.full(d, -np.inf))
        self.ru.append(t * t + 2 * t * self.x0)

    def decide(self, row, const, tolerance, deadline, net, x0, y, eps) -> tuple[int, np.ndarray | None]:
        # First: is there an input with margin ≤ τ? None: certified. One that is a counterexample: falsified.
        # One that is not (its margin lies in (0, τ], or the solver's tolerance made it): ask again for margin
        # ≤ −τ, where an answer is a counterexample and none leaves the point in the tie zone, unknown.
        for phase, threshold in enumerate((tolerance, -tolerance)):
            found, cex = self._search(row, threshold - const, deadline, net, x0, y, eps)
            if found == "none":
                return (CERTIFIED if phase == 0 else UNKNOWN), None
            if found == "counterexample":
                return FALSIFIED, cex
            if found == "timeout":
                return UNKNOWN, None
        return UNKNOWN, None

    def _search(self, row, upper_bound, deadline, net, x0, y, eps) -> tuple[str, np.ndarray | None]:
        """An input with ``row·v ≤ upper_bound``: 'none', 'counterexample', 'candidate' or 'timeout'."""
        objective = np.zeros(self.nvar)
        options: dict[str, float] = {}
        if self.l2:
            objective[self.q_cols] = 1.0  # a nearest such input, so that the tangents close in on the ball
            options["mip_rel_gap"] = L2_GAP
        for _ in range(MAX_CUTS if self.l2 else 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return "timeout", None
            a = sp.vstack([*self.rows, row]).tocsr()
            lower = np.concatenate([*self.rl, [-np.inf]])
            upper = np.concatenate([*self.ru, [upper_bound]])
            res = milp(objective, constraints=[LinearConstraint(a, lower, upper)], integrality=self.integ,
                       bounds=VarBounds(self.lb, self.ub), options={"time_limit": remaining, **options})
            if res.status == 2:  # infeasible: no input in the (outer) ball brings the margin that low
                return "none", None
            if res.x is None:  # time or node limit before any feasible point
                return "timeout", None
            x = np.clip(res.x[: self.d], self.lb[: self.d], self.ub[: self.d])
            delta = x - self.x0
            size = float(np.linalg.norm(delta)) if self.l2 else 0.0
            inside = x if size <= eps else self.x0 + delta * (eps / size) * (1 - 1e-12)
            if _misclassified(net, inside, x0, y):
                return "counterexample", inside
            if not self.l2 or size <= eps * (1 + 1e-9):
                return "candidate", None
            self._tangents(delta)  # exact at this candidate from now on, which the next solve must leave
        return "timeout", None


def _misclassified(net: MilpNet, x: np.ndarray, x0: torch.Tensor, y: int) -> bool:
    xt = torch.as_tensor(x, dtype=torch.float64, device=x0.device).view_as(x0)
    with torch.no_grad():
        z = net.graph.forward(xt)[0]
    margin = z[y] - z
    margin[y] = torch.inf
    return bool(margin.min() <= 0)
