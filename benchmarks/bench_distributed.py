"""What sharding one property over torchrun ranks costs, what streaming a dataset holds in memory, and the
per-image cost of the default attack on a ResNet-50 (for the time-to-gate estimate in BENCHMARKS.md).

    python benchmarks/bench_distributed.py overhead   # 1 rank vs 2 gloo ranks, communication per look
    python benchmarks/bench_distributed.py memory     # peak RSS of a streamed dataset, 500 vs 4000 images
    python benchmarks/bench_distributed.py resnet50   # ResNet-50 forward and forward+backward per image

Not collected by pytest. Prints Markdown lines that paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


# --- overhead: the same evaluation on 1 and 2 ranks, the exchanges timed --------------------------------------

def _overhead_worker(out: str, samples: int) -> None:
    from robtest import distributed
    from robtest.data import digits_tensors
    from robtest.evaluate import evaluate_accuracy
    from robtest.properties.sequential import SequentialCheck
    from robtest.zoo import mlp, train_classifier

    torch.set_num_threads(1)
    x, y = digits_tensors("train")
    torch.manual_seed(0)  # the initial weights: the same model in every process
    model = train_classifier(mlp(hidden=(64,)), x, y, epochs=15, lr=3e-3, seed=0)
    data = digits_tensors("test")
    waits: list[float] = []
    comms: list[float] = []
    original = distributed.exchange

    def timed(payload, **kw):
        if distributed.active() and kw.get("error") is None:
            t0 = time.perf_counter()
            original(None)  # both ranks ready: the time waited here is load imbalance, not communication
            t1 = time.perf_counter()
            got = original(payload, **kw)
            waits.append(t1 - t0)
            comms.append(time.perf_counter() - t1)
            return got
        return original(payload, **kw)

    distributed.exchange = timed
    import robtest.evaluate as ev

    ev.distributed.exchange = timed
    class EveryLook(SequentialCheck):  # the planned looks of a sequential verdict, all of them taken
        def __call__(self, total: float, seen: int) -> bool:
            super().__call__(total, seen)
            return False

    check = EveryLook(n_total=samples, threshold=0.5, comparison=">=")
    t0 = time.perf_counter()
    # batches of 32: ranks take whole batches, so the looks (64, 128, 256, 512, 540) split 2, 2, 4, 8 and 1 ways
    m = evaluate_accuracy(model, data, attack="auto", eps=0.1, samples=samples, device="cpu", stop=check,
                          batch_size=32)
    total = time.perf_counter() - t0
    if distributed.is_main():
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"world": distributed.world(), "total_s": total, "value": m.value, "n": m.n,
                       "outcomes": m.details["outcomes"], "looks": check.looks_taken, "exchanges": len(comms),
                       "comm_s": sum(comms), "wait_s": sum(waits),
                       "comm_per_exchange_ms": 1000 * sum(comms) / max(1, len(comms))}, f)


def overhead(samples: int) -> None:
    results = {}
    for world in (1, 2):
        out = os.path.join(HERE, f".overhead_{world}.json")
        cmd = [sys.executable, os.path.abspath(__file__), "_overhead", out, str(samples)]
        if world > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world),
                   *cmd[1:]]
        subprocess.run(cmd, check=True, env=_env(), cwd=ROOT)
        with open(out, encoding="utf-8") as f:
            results[world] = json.load(f)
        os.remove(out)
    one, two = results[1], results[2]
    attack = two["total_s"] - two["comm_s"] - two["wait_s"]
    print("| ranks | wall time | value, n | looks | exchanges | communication | waiting for the slower rank |")
    print("|---|---|---|---|---|---|---|")
    for w, r in results.items():
        comm = f"{r['comm_s'] * 1000:.1f} ms ({r['comm_per_exchange_ms']:.2f} ms each)" if w > 1 else "—"
        wait = f"{r['wait_s']:.2f} s" if w > 1 else "—"
        print(f"| {w} | {r['total_s']:.1f} s | {r['value']:.4f}, {r['n']} | {r['looks']} | "
              f"{r['exchanges'] if w > 1 else 0} | {comm} | {wait} |")
    print(f"\nsame per-sample outcomes on 1 and 2 ranks: {one['outcomes'] == two['outcomes']}; communication "
          f"{100 * two['comm_s'] / max(attack, 1e-9):.3f}% of the attack time on rank 0")


# --- memory: a dataset of any size streams, peak memory set by the batch ---------------------------------------

class _Synthetic(torch.utils.data.Dataset):
    """``n`` images of 3×128×128, each made from its index when read (nothing held in memory)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, 128, 128, generator=g), int(i % 10)


def _memory_worker(n: int) -> None:
    from robtest.evaluate import evaluate_accuracy

    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(), torch.nn.Linear(192, 10))
    loader = torch.utils.data.DataLoader(_Synthetic(n), batch_size=64, num_workers=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    m = evaluate_accuracy(model, loader, attack="fgsm", eps=0.03, batch_size=64, device="cpu", checks=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": m.n, "dataset_mb": n * 3 * 128 * 128 * 4 / 2 ** 20, "before_mb": before,
                      "peak_mb": peak, "s": time.perf_counter() - t0}))


def memory() -> None:
    print("| images (3×128×128) | dataset if materialised | peak RSS before | peak RSS after | time |")
    print("|---|---|---|---|---|")
    for n in (500, 4000):
        got = subprocess.run([sys.executable, os.path.abspath(__file__), "_memory", str(n)], check=True,
                             env=_env(), cwd=ROOT, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(got)
        print(f"| {r['n']} | {r['dataset_mb']:.0f} MB | {r['before_mb']:.0f} MB | {r['peak_mb']:.0f} MB | "
              f"{r['s']:.1f} s |")


# --- ResNet-50: per-image cost of a forward and of a forward+backward w.r.t. the input -------------------------

def resnet50(batch: int, repeats: int, threads: int) -> None:
    import torchvision

    torch.set_num_threads(threads)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.rand(batch, 3, 224, 224)
    y = torch.zeros(batch, dtype=torch.long)

    def fwd():
        with torch.no_grad():
            model(x)

    def fwd_bwd():
        xa = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xa), y, reduction="sum")
        torch.autograd.grad(loss, xa)

    def best(fn):
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) / batch

    f, fb = best(fwd), best(fwd_bwd)
    print(f"ResNet-50, 224×224, batch {batch}, {threads} thread(s), best of {repeats}: forward {f * 1000:.0f} ms "
          f"per image, forward+backward w.r.t. the input {fb * 1000:.0f} ms per image")
    print(json.dumps({"forward_s": f, "forward_backward_s": fb}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_overhead":
        return _overhead_worker(sys.argv[2], int(sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "_memory":
        return _memory_worker(int(sys.argv[2]))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=("overhead", "memory", "resnet50"))
    p.add_argument("--samples", type=int, default=540)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.part == "overhead":
        overhead(a.samples)
    elif a.part == "memory":
        memory()
    else:
        resnet50(a.batch, a.repeats, a.threads)


if __name__ == "__main__":
    main()
