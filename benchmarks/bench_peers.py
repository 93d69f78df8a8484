"""robtest against torchattacks, IBM ART and foolbox 3 and the compute floor, in one process.

    python benchmarks/bench_peers.py [--quick] [--full] [--device cuda] [--threads N] [--skip-e2e]

Same model, same batch, same settings for every library: FGSM, PGD-20 L∞ and PGD-20 L2 (step 2.5·ε/20,
random start, fixed budget: robtest with ``early_stop=False``). Models have random weights and the batch is
labelled with the model's own clean predictions, so robust accuracy measures the attack alone; every library's
examples are re-predicted in one forward pass and must agree with robtest's within one point (one sample on
batches under 100), or the row is flagged. Timings are medians of paired, alternating rounds; ratios are the
median of per-round ratios.

Then the ``accuracy_floor`` check end to end on a trained, non-robust CNN (digits at 28×28):
``robtest.evaluate_accuracy`` with PGD (early stop on, then off) against the same loop written with
torchattacks, plus the samples a sequential verdict needs.

Benchmark-only dependencies: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    base_parser,
    floor_loop,
    galloway_cnn,
    machine_line,
    make_case,
    median,
    paired_ratio,
    setup,
    table,
    time_paired,
)

import robtest  # noqa: E402,F401
from robtest.attacks.fgsm import fgsm  # noqa: E402
from robtest.attacks.pgd import pgd  # noqa: E402

STEPS = 20
EPS = {"linf": 8 / 255, "l2": 0.5}
ATTACKS = {"fgsm-linf": ("linf", 1), "pgd20-linf": ("linf", STEPS), "pgd20-l2": ("l2", STEPS)}
PEERS = ("torchattacks", "art", "foolbox")


def peer_runners(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str, device: torch.device,
                 missing: set[str]) -> dict:
    """name → callable returning adversarial examples as a tensor on ``device``."""
    norm, steps = ATTACKS[attack]
    eps = EPS[norm]
    alpha = 2.5 * eps / steps
    one_step = steps == 1
    gen = torch.Generator(device=device)
    out: dict = {}

    if one_step:
        out["robtest"] = lambda: fgsm(model, x, y, eps=eps, norm=norm)
    else:
        def run_robtest():
            gen.manual_seed(0)
            return pgd(model, x, y, eps=eps, norm=norm, steps=steps, early_stop=False, generator=gen)
        out["robtest"] = run_robtest

    if "torchattacks" not in missing:
        import torchattacks as ta

        if one_step:
            atk = ta.FGSM(model, eps=eps) if norm == "linf" else ta.PGDL2(model, eps=eps, alpha=eps, steps=1,
                                                                        random_start=False)
        else:
            cls = ta.PGD if norm == "linf" else ta.PGDL2
            atk = cls(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
        out["torchattacks"] = lambda: atk(x, y)

    if "art" not in missing:
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
        from art.estimators.classification import PyTorchClassifier

        clf = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                                nb_classes=10, clip_values=(0.0, 1.0),
                                device_type="gpu" if device.type == "cuda" else "cpu")
        art_norm = np.inf if norm == "linf" else 2
        n = x.shape[0]
        if one_step:
            a = FastGradientMethod(clf, norm=art_norm, eps=eps, batch_size=n)
        else:
            a = ProjectedGradientDescentPyTorch(clf, norm=art_norm, eps=eps, eps_step=alpha, max_iter=steps,
                                                num_random_init=1, batch_size=n, verbose=False)
        xn, yn = x.cpu().numpy(), y.cpu().numpy()
        out["art"] = lambda: torch.from_numpy(a.generate(xn, yn)).to(device)

    if "foolbox" not in missing:
        import foolbox as fb

        fm = fb.PyTorchModel(model, bounds=(0.0, 1.0), device=device)
        if one_step:
            fa = fb.attacks.FGSM() if norm == "linf" else fb.attacks.L2FastGradientAttack()
        else:
            cls = fb.attacks.LinfPGD if norm == "linf" else fb.attacks.L2PGD
            fa = cls(abs_stepsize=alpha, steps=steps, random_start=True)
        out["foolbox"] = lambda: fa(fm, x, y, epsilons=eps)[1]

    out["floor"] = lambda: floor_loop(model, x, y, steps)
    return out


def available() -> set[str]:
    missing = set()
    for name, mod in (("torchattacks", "torchattacks"), ("art", "art"), ("foolbox", "foolbox")):
        try:
            __import__(mod)
        except Exception as e:  # noqa: BLE001  (a peer that fails to import is reported, not fatal)
            print(f"# {name} not available ({type(e).__name__}: {e}); pip install -e '.[bench]'")
            missing.add(name)
    return missing


@torch.no_grad()
def robust_acc(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x_adv).argmax(1) == y).float().mean())


def bench_libraries(args, dev: torch.device) -> None:
    missing = available()
    repeats = args.repeats or (3 if args.quick else 5)
    if args.quick:
        cases = [("galloway-28x28x1", 1), ("galloway-28x28x1", 32), ("galloway-28x28x1", 256),
                 ("resnet18-32x32x3", 1), ("resnet18-32x32x3", 32)]
    else:
        cases = [(m, b) for m in ("galloway-28x28x1", "galloway-32x32x3", "resnet18-32x32x3") for b in (1, 32, 256)]
    if args.full:
        cases += [("resnet18-224x224x3", b) for b in (1, 32)] + ([("resnet18-224x224x3", 256)]
                                                                 if dev.type == "cuda" else [])
    print(f"# FGSM and PGD-{STEPS} (step 2.5·ε/{STEPS}, random start, fixed budget); ε: L∞ {EPS['linf']:.4g}, "
          f"L2 {EPS['l2']:g}; {repeats} paired rounds")
    libs = ["robtest", *[p for p in PEERS if p not in missing]]
    rows, flags = [], []
    for model_name, batch in cases:
        model, x, y = make_case(model_name, batch, dev)
        for attack in ATTACKS:
            runners = peer_runners(model, x, y, attack, dev, missing)
            accs = {k: robust_acc(model, runners[k](), y) for k in libs}
            t = time_paired(runners, repeats, dev, warmup=0)  # the accuracy run above warmed every runner
            tol = max(0.01, 1.0 / batch + 1e-9) if batch < 100 else 0.01 + 1e-9
            for k in libs:
                bad = abs(accs[k] - accs["robtest"]) > tol
                if bad:
                    flags.append(f"{model_name} b={batch} {attack}: {k} robust acc {accs[k]:.3f} vs robtest "
                                 f"{accs['robtest']:.3f}")
                vs_peers = " ".join(f"{paired_ratio(t, k, p):.2f}" if p != k else "—" for p in libs[1:])
                rows.append([model_name, batch, attack, k, f"{median(t[k]):.4f}",
                             f"{paired_ratio(t, k, 'floor'):.3f}", vs_peers,
                             f"{accs[k]:.3f}" + (" !" if bad else "")])
                print("  ", *rows[-1], flush=True)
            rows.append([model_name, batch, attack, "floor", f"{median(t['floor']):.4f}", "1.000", "", "—"])
    print()
    print(table(rows, ["model", "batch", "attack", "library", "median s", "/ floor",
                       "/ " + ", / ".join(libs[1:]), "robust acc"]))
    print()
    print("strength check:", "all libraries agree within one point (one sample below batch 100)" if not flags
          else "FLAGGED\n  " + "\n  ".join(flags))


def bench_end_to_end(args, dev: torch.device) -> None:
    """accuracy_floor end to end: evaluate_accuracy (early stop on / off) vs the torchattacks loop."""
    import torchattacks as ta

    from robtest import evaluate_accuracy
    from robtest.data import digits_tensors
    from robtest.stats import proportion_ci
    from robtest.zoo import train_classifier

    t0 = time.perf_counter()
    xtr, ytr = digits_tensors("train", size=28)
    xte, yte = digits_tensors("test", size=28)
    model = train_classifier(galloway_cnn(1, n_f=32, input_size=28), xtr, ytr, epochs=3, seed=0, reinit=True)
    model = model.to(dev).eval()
    print(f"# end to end: Galloway CNN (n_f=32) trained 3 epochs on digits 28×28 in {time.perf_counter() - t0:.1f} s;"
          f" test set of {len(yte)}")
    eps, steps, bs, floor = 0.1, 20, 256 if not args.quick else 128, 0.5
    alpha = 2.5 * eps / steps

    def robtest_eval(early_stop: bool, stop=None):
        return evaluate_accuracy(model, (xte, yte), attack="pgd", eps=eps, steps=steps, early_stop=early_stop,
                                 batch_size=bs, device=dev, seed=0, stop=stop)

    def sequential_stop(correct: int, seen: int) -> bool:
        # what a sequential verdict does: stop once the 95% interval lies wholly on one side of the floor
        lo, hi = proportion_ci(correct, seen, confidence=0.95)
        return lo > floor or hi < floor

    def ta_loop():
        atk = ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
        ok = 0
        for i in range(0, len(yte), bs):
            xb, yb = xte[i:i + bs].to(dev), yte[i:i + bs].to(dev)
            x_adv = atk(xb, yb)
            with torch.no_grad():
                ok += int((model(x_adv).argmax(1) == yb).sum())
        return ok / len(yte)

    runners = {
        "robtest early stop": lambda: robtest_eval(True),
        "robtest fixed budget": lambda: robtest_eval(False),
        "robtest sequential": lambda: robtest_eval(True, sequential_stop),
        "torchattacks loop": ta_loop,
        "floor": lambda: [floor_loop(model, xte[i:i + bs].to(dev), yte[i:i + bs].to(dev), steps)
                          for i in range(0, len(yte), bs)],
    }
    res = {k: runners[k]() for k in runners}
    repeats = args.repeats or 3
    t = time_paired(runners, repeats, dev, warmup=0)
    clean = res["robtest early stop"].details["clean_accuracy"]
    rows = []
    for k in runners:
        r = res[k]
        acc = f"{r.value:.3f}" if hasattr(r, "value") else (f"{r:.3f}" if isinstance(r, float) else "—")
        n = str(r.n) if hasattr(r, "n") else str(len(yte))
        rows.append([k, f"{median(t[k]):.3f}", f"{paired_ratio(t, k, 'floor'):.3f}", acc, n])
    print(f"# clean accuracy {clean:.3f}; PGD-{steps} L∞ ε={eps}; batch {bs}; floor = {steps}×(fwd+bwd) over all "
          f"points; sequential verdict against a floor of {floor}")
    print(table(rows, ["run", "median s", "/ floor", "robust acc", "samples used"]))
    saved = median(t["robtest fixed budget"]) - median(t["robtest early stop"])
    print(f"early stopping saves {saved:.3f} s ({saved / median(t['robtest fixed budget']):.0%}) against the fixed "
          f"budget; the sequential verdict used {res['robtest sequential'].n} of {len(yte)} samples")


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end accuracy_floor comparison")
    p.add_argument("--only-e2e", action="store_true", help="only the end-to-end accuracy_floor comparison")
    args = p.parse_args()
    dev = setup(args)
    warnings.filterwarnings("ignore")  # peers warn about deprecated torch APIs; not what is measured
    print(machine_line(dev))
    if not args.only_e2e:
        bench_libraries(args, dev)
    if not args.skip_e2e:
        print()
        bench_end_to_end(args, dev)


if __name__ == "__main__":
    main()
