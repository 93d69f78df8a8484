"""robtest's ``auto`` ensemble against the exact robust accuracy, torchattacks' AutoAttack and PGD-10, in one run.

    python benchmarks/bench_ensemble.py [--threads 1] [--points 100] [--eps 0.05 0.1] [--repeats 3]

A 64→16→10 ReLU MLP trained on the digits (8×8, seeded) and the first ``--points`` test digits it classifies
correctly (clean accuracy 1 on them, so robust accuracy measures the attack alone). For each ε:

* the exact L∞ robust accuracy, one MILP per point and wrong class (``tests/attacks/exact.py``, scipy/HiGHS);
* robtest ``auto`` with its defaults (50 steps, 9 targets, 500 queries), and the cost of each phase (APGD-CE
  on all points, APGD-T on those it left, Square on the rest), each phase timed on its own;
* budget variants of ``auto`` (steps, queries), the evidence for the defaults;
* robtest PGD-10 (the earlier default of ``accuracy_floor``);
* torchattacks ``AutoAttack(version="standard")`` (APGD-CE, APGD-T over 9 targets, FAB-T, Square 5000
  queries; torchattacks runs APGD with 10 steps, not the 100 of the original AutoAttack).

Timings are medians of paired, alternating rounds (``_common.time_paired``); ratios are medians of per-round
ratios. Accuracies come from one run with seed 0.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import base_parser, machine_line, median, paired_ratio, setup, table, time_paired  # noqa: E402

from robtest.attacks import apgd, apgd_t, auto, pgd, square  # noqa: E402
from robtest.data import digits_tensors  # noqa: E402
from robtest.zoo import mlp, train_classifier  # noqa: E402
from tests.attacks.exact import exact_robust  # noqa: E402

DEFAULTS = {"steps": 50, "targets": 9, "queries": 500}  # robtest.attacks.auto's, restated to show them
VARIANTS = [  # (label, options): the budget choices weighed for the defaults
    ("steps 100, 3 targets, queries 1000", {"steps": 100, "targets": 3, "queries": 1000}),
    ("steps 50, 3 targets, queries 500", {"steps": 50, "targets": 3, "queries": 500}),
    ("steps 25, 9 targets, queries 300", {"steps": 25, "targets": 9, "queries": 300}),
    ("steps 50, 9 targets, queries 0", {"steps": 50, "targets": 9, "queries": 0}),
    ("steps 100, 9 targets, queries 5000", {"steps": 100, "targets": 9, "queries": 5000}),
]


class Rows(torch.nn.Module):
    """Counts the rows the attacks forward with gradients on (forward + backward) and without (forward only)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.grad, self.fwd = model, 0, 0

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            self.grad += x.shape[0]
        else:
            self.fwd += x.shape[0]
        return self.model(x)

    def cost(self) -> float:
        # in forward+backward rows: a forward alone costs about a third of one
        return self.grad + self.fwd / 3


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1])
    p.add_argument("--hidden", type=int, default=16)
    args = p.parse_args()
    dev = setup(args)
    if dev.type != "cpu":
        raise SystemExit("bench_ensemble: the MILP and the digits MLP run on the CPU only")
    repeats = args.repeats or (1 if args.quick else 3)
    warnings.simplefilter("ignore")  # indicators (zero gradients at dead ReLUs) are not what is measured here
    print(machine_line(dev))
    t0 = time.perf_counter()
    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(args.hidden,)), x, y, epochs=15, lr=3e-3, seed=0, reinit=True)
    for q in model.parameters():
        q.requires_grad_(False)
    xt, yt = digits_tensors("test")
    with torch.no_grad():
        ok = model(xt).argmax(1) == yt
    print(f"# 64→{args.hidden}→10 MLP trained in {time.perf_counter() - t0:.1f} s, clean test accuracy "
          f"{float(ok.float().mean()):.3f}; the first {args.points} correctly classified test digits")
    xt, yt = xt[ok][:args.points], yt[ok][:args.points]

    for eps in args.eps:
        bench_eps(model, xt, yt, eps, repeats, dev)


def bench_eps(model, xt: torch.Tensor, yt: torch.Tensor, eps: float, repeats: int, dev: torch.device) -> None:
    import torchattacks as ta

    n = len(yt)

    def acc(xa: torch.Tensor) -> float:
        with torch.no_grad():
            return float((model(xa).argmax(1) == yt).float().mean())

    t0 = time.perf_counter()
    robust, ties = exact_robust(model, xt, yt, eps)
    t_milp = time.perf_counter() - t0
    exact = float(robust.mean())
    print(f"\n## L∞ ε = {eps:g}: exact robust accuracy {exact:.3f} ({int(robust.sum())}/{n}; MILP "
          f"{t_milp:.1f} s, {ties} too close to call)")

    def left(xa: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (model(xa).argmax(1) == yt).nonzero().squeeze(1)

    # the phases, each on the points the phases before it left (indices fixed by one seeded run)
    g = gen()
    a1 = apgd(model, xt, yt, eps=eps, steps=DEFAULTS["steps"], generator=g)
    i2 = left(a1)
    a2 = apgd_t(model, xt[i2], yt[i2], eps=eps, steps=DEFAULTS["steps"], targets=DEFAULTS["targets"],
                generator=g)
    with torch.no_grad():
        i3 = i2[model(a2).argmax(1) == yt[i2]]

    runners = {  # name → attack on a given model (the plain model is timed, a counting wrapper counted)
        "auto": lambda m: auto(m, xt, yt, eps=eps, generator=gen()),
        "phase APGD-CE": lambda m: apgd(m, xt, yt, eps=eps, steps=DEFAULTS["steps"], generator=gen()),
        "phase APGD-T": lambda m: apgd_t(m, xt[i2], yt[i2], eps=eps, steps=DEFAULTS["steps"],
                                         targets=DEFAULTS["targets"], generator=gen()),
        "phase Square": lambda m: square(m, xt[i3], yt[i3], eps=eps, queries=DEFAULTS["queries"], generator=gen()),
        "pgd10": lambda m: pgd(m, xt, yt, eps=eps, generator=gen()),
        "torchattacks AA standard": lambda m: ta.AutoAttack(m, eps=eps, version="standard", n_classes=10,
                                                            seed=0)(xt, yt),
    }
    for label, kw in VARIANTS:
        runners[f"auto {label}"] = lambda m, kw=kw: auto(m, xt, yt, eps=eps, generator=gen(), **kw)
    accs, cost = {}, {}
    counted = Rows(model).eval()
    for k, run in runners.items():
        counted.grad = counted.fwd = 0
        out = run(counted)
        cost[k] = counted.cost()
        if not k.startswith("phase"):
            accs[k] = acc(out)
    t = time_paired({k: (lambda r=r: r(model)) for k, r in runners.items()}, repeats, dev, warmup=0)
    rows = [["exact (MILP)", f"{exact:.3f}", "0", f"{t_milp:.2f}", "—", "—", "—"]]
    for k in runners:
        if k.startswith("phase"):
            continue
        rows.append([k, f"{accs[k]:.3f}", f"{round((accs[k] - exact) * n):+d}", f"{median(t[k]):.3f}",
                     f"{paired_ratio(t, k, 'pgd10'):.1f}", f"{paired_ratio(t, k, 'torchattacks AA standard'):.3f}",
                     f"{cost[k] / cost['pgd10']:.1f}"])
    print(table(rows, ["attack", "robust acc", "points above exact", "median s", "time / PGD-10",
                       "time / torchattacks AA", "model rows / PGD-10"]))
    total = sum(median(t[k]) for k in ("phase APGD-CE", "phase APGD-T", "phase Square"))
    prow = [[k.removeprefix("phase "), pts, f"{median(t[k]):.3f}", f"{median(t[k]) / total:.2f}",
             f"{cost[k] / cost['pgd10']:.1f}"]
            for k, pts in (("phase APGD-CE", n), ("phase APGD-T", len(i2)), ("phase Square", len(i3)))]
    print(f"\nphases of auto (defaults {DEFAULTS}), each timed alone on the points the earlier ones left:")
    print(table(prow, ["phase", "points attacked", "median s", "share of time", "model rows / PGD-10"]))

if __name__ == "__main__":
    main()
