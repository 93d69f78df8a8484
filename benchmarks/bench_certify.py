"""Certified accuracy (IBP, CROWN, α-CROWN, exact MILP) beside attacked accuracy on the embedded digits.

    python benchmarks/bench_certify.py [--threads 1] [--milp-points 50] [--time-limit 10] [--quick]

Three 64→64→64→10 ReLU MLPs trained here in seconds: plain, PGD-trained (Madry et al.) and IBP-trained
(Gowal et al.; ε_train 0.12, ramp over half of 100 epochs). On the 540 test digits, at L∞ ε = 0.1 and L2
ε = 0.3 (pixel units): the certified accuracy by IBP, CROWN and α-CROWN, the attacked accuracy under ``auto``
(APGD-CE, APGD-T, Square), and the exact answer (MILP) on the first ``--milp-points`` test digits with a
per-sample time limit, with the certified/attacked figures on that same subset beside it. Certified ≤ exact
≤ attacked must hold on every point; the script checks it and says so. Time is wall time per sample.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import base_parser, machine_line, setup, table  # noqa: E402

from robtest.attacks import auto  # noqa: E402
from robtest.certify import certify  # noqa: E402
from robtest.data import digits_tensors  # noqa: E402
from robtest.errors import EvaluationWarning  # noqa: E402
from robtest.zoo import mlp, train_classifier  # noqa: E402

HIDDEN = (64, 64)
RECIPES = {
    "plain": dict(epochs=30, lr=2e-3),
    "PGD-trained": dict(epochs=30, lr=2e-3, adversarial="pgd", eps=0.1, eps_ramp=10, pgd_steps=7),
    "IBP-trained": dict(epochs=100, lr=2e-3, adversarial="ibp", eps=0.12, eps_ramp=50),
}
CASES = [("linf", 0.1), ("l2", 0.3)]


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--milp-points", type=int, default=50, help="test digits the MILP decides (default 50)")
    p.add_argument("--time-limit", type=float, default=10.0, help="MILP seconds per sample (default 10)")
    args = p.parse_args()
    dev = setup(args)
    warnings.filterwarnings("ignore", category=EvaluationWarning)  # auto's notes (Square's wins) are not measured
    milp_points = 10 if args.quick else args.milp_points
    x_tr, y_tr = digits_tensors("train")
    x, y = (t.to(dev) for t in digits_tensors("test"))
    n = len(y)
    print(machine_line(dev))
    print(f"# digits: {len(y_tr)} train, {n} test; MLP 64-{HIDDEN[0]}-{HIDDEN[1]}-10; exact = MILP on the first "
          f"{milp_points} test digits, {args.time_limit:g} s per sample")
    rows, checks = [], []
    for name, recipe in RECIPES.items():
        model, t_train = timed(train_classifier, mlp(hidden=HIDDEN), x_tr, y_tr, seed=0, reinit=True, **recipe)
        model = model.to(dev)
        with torch.no_grad():
            clean = float((model(x).argmax(1) == y).float().mean())
        print(f"  {name}: trained in {t_train:.1f} s, clean accuracy {clean:.3f}", flush=True)
        for norm, eps in CASES:
            ibp, t_ibp = timed(certify, model, x, y, eps=eps, norm=norm, method="ibp")
            crown, t_crown = timed(certify, model, x, y, eps=eps, norm=norm, method="crown")
            alpha, t_alpha = timed(certify, model, x, y, eps=eps, norm=norm, method="alpha-crown")
            xa, t_auto = timed(auto, model, x, y, eps=eps, norm=norm, generator=torch.Generator(dev).manual_seed(0))
            with torch.no_grad():
                broken = model(xa).argmax(1) != y
            k = milp_points
            exact, t_exact = timed(certify, model, x[:k], y[:k], eps=eps, norm=norm, method="milp",
                                   time_limit=args.time_limit)
            unknown = ~exact.certified & ~exact.falsified
            ok = not bool((alpha.certified & broken).any() or (ibp.certified & ~crown.certified).any()
                          or (crown.certified & ~alpha.certified).any()
                          or (alpha.certified[:k] & ~exact.certified).any() or (exact.certified & broken[:k]).any())
            checks.append(ok)
            rows.append([
                name, f"{norm} {eps:g}", f"{clean:.3f}",
                f"{ibp.certified.float().mean():.3f}", f"{crown.certified.float().mean():.3f}",
                f"{alpha.certified.float().mean():.3f}", f"{(~broken).float().mean():.3f}",
                f"{alpha.certified[:k].float().mean():.2f} / {exact.certified.float().mean():.2f} / "
                f"{(~broken[:k]).float().mean():.2f} ({int(unknown.sum())} unknown)",
                f"{1e3 * t_ibp / n:.2f}", f"{1e3 * t_crown / n:.2f}", f"{1e3 * t_alpha / n:.1f}",
                f"{1e3 * t_exact / k:.0f}", f"{1e3 * t_auto / n:.1f}",
            ])
            print("   ", " | ".join(rows[-1]), flush=True)
    print()
    print(table(rows, ["model", "ball", "clean", "IBP cert", "CROWN cert", "α-CROWN cert", "attacked (auto)",
                       f"first {milp_points}: α-CROWN / exact / attacked", "IBP ms", "CROWN ms", "α-CROWN ms",
                       "exact ms", "auto ms"]))
    print()
    print("certified ≤ exact ≤ attacked on every point:", "yes" if all(checks) else "NO (a bug: please report)")


if __name__ == "__main__":
    main()
