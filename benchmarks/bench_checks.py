"""What the indicators of attack failure cost: evaluate_accuracy with its after-the-fact checks against the same
evaluation with ``checks=False``, for PGD-20 and the default ``auto``, on models trained on the digits.

    python benchmarks/bench_checks.py --threads 1 --repeats 3

Paired, alternating runs in one process; a ratio is the median of the per-round ratios. The during-evaluation
checks (randomisation probe: two forwards of 8 inputs; gradient masking: reductions of each step's gradient on
the device) are in both runs; what differs is the re-attack of at most 64 robust points.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from robtest.data import digits_tensors
    from robtest.evaluate import evaluate_accuracy
    from robtest.zoo import mlp, small_cnn, train_classifier

    x, y = digits_tensors("train")
    models = {
        "mlp-64": train_classifier(mlp(hidden=(64,)), x, y, epochs=15, lr=3e-3, seed=0, reinit=True),
        "cnn-32": train_classifier(small_cnn(width=32), x, y, epochs=8, lr=3e-3, seed=0, reinit=True),
    }
    data = digits_tensors("test")
    print("| model | attack | ε | accuracy | checks on s | checks off s | on / off |")
    print("|---|---|---|---|---|---|---|")
    for name, model in models.items():
        for attack, kw in (("pgd", {"steps": 20}), ("auto", {})):
            ratios, on_s, off_s, acc = [], [], [], None
            for r in range(args.repeats):
                times = {}
                for checks in ((True, False) if r % 2 == 0 else (False, True)):
                    t = time.perf_counter()
                    m = evaluate_accuracy(model, data, attack=attack, eps=0.1, samples=args.samples, device="cpu",
                                          checks=checks, **kw)
                    times[checks] = time.perf_counter() - t
                    acc = m.value
                ratios.append(times[True] / times[False])
                on_s.append(times[True])
                off_s.append(times[False])
            print(f"| {name} | {attack} | 0.1 | {acc:.3f} | {statistics.median(on_s):.2f} | "
                  f"{statistics.median(off_s):.2f} | {statistics.median(ratios):.2f} |")


if __name__ == "__main__":
    main()
