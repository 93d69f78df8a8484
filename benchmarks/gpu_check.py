"""The GPU checks in one short run, for a session that is lent a GPU (minutes of device time for all tries):

    python benchmarks/gpu_check.py                        # on the GPU machine: every check, a few minutes
    python benchmarks/gpu_check.py --device cpu --quick   # the same checks on the CPU (tests/test_benchmarks.py)

1. placement: ``evaluate_accuracy(device=...)`` on a model that lives on the CPU, in train mode, with one frozen
   parameter: it must come back exactly so; how many of the 540 digits' outcomes differ from a CPU run.
2. syncs: PGD-40 and APGD-50 on a small CNN, compacting every step vs every 8 steps: wall time, and on CUDA the
   host syncs counted by ``torch.cuda.set_sync_debug_mode("warn")``.
3. throughput: ``evaluate_accuracy(attack="auto", eps=1/255)`` on a random-weight ResNet-18 at 3×32×32 in fp32, bf16,
   channels_last and both: images per second and the accuracy against fp32's.
4. pytest: a generated project under ``pytest --robust --robust-device DEVICE -n 2`` (xdist workers sharing the
   device): passes, one summary.

Each check runs on its own; one that fails prints its error and the others still run. Prints Markdown lines.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def placement(device: torch.device, quick: bool) -> None:
    from robtest.data import digits_tensors
    from robtest.evaluate import evaluate_accuracy
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(64,)), x, y, epochs=5 if quick else 15, lr=3e-3, seed=0, reinit=True)
    model.train()
    first = next(model.parameters())
    first.requires_grad_(False)
    data = digits_tensors("test")
    kw = {"attack": "pgd", "eps": 0.1, "steps": 10, "checks": False}
    on_dev = evaluate_accuracy(model, data, device=device, **kw)
    on_cpu = evaluate_accuracy(model, data, device="cpu", **kw)
    back = (next(model.parameters()).device.type == "cpu" and model.training and not first.requires_grad
            and all(p.requires_grad for p in list(model.parameters())[1:]))
    differ = sum(a != b for a, b in zip(on_dev.details["outcomes"], on_cpu.details["outcomes"], strict=True))
    print(f"- placement on {device}: model given back on the CPU, in train mode, requires_grad as it was: {back}")
    print(f"- PGD-10 accuracy {on_dev.value:.4f} on {device} vs {on_cpu.value:.4f} on the CPU; "
          f"{differ} of {on_dev.n} outcomes differ (float rounding only)")


def syncs(device: torch.device, quick: bool) -> None:
    from robtest.attacks import _driver, apgd, pgd
    from robtest.rng import SampleRNG
    from robtest.zoo import small_cnn

    torch.manual_seed(0)
    model = small_cnn(width=16).to(device).eval()
    n = 64 if quick else 1024
    x = torch.rand(n, 1, 8, 8, device=device)
    with torch.no_grad():
        y = model(x).argmax(1)
    original = _driver.compact_every
    print("| attack | compact every | wall s | host syncs (CUDA) | fooled |")
    print("|---|---|---|---|---|")
    try:
        for name, attack, steps in (("PGD", pgd, 40), ("APGD", apgd, 50)):
            for every in (1, 8):
                _driver.compact_every = lambda _device, every=every: every
                out: list[torch.Tensor] = []

                def run(attack=attack, steps=steps, out=out):
                    out.append(attack(model, x, y, eps=0.1, steps=steps, generator=SampleRNG(0, torch.arange(n))))

                counted = "—"
                if device.type == "cuda":
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        torch.cuda.set_sync_debug_mode("warn")
                        try:
                            wall = _timed(run, device)
                        finally:
                            torch.cuda.set_sync_debug_mode("default")
                    counted = str(sum("synchroniz" in str(w.message) for w in caught))
                else:
                    wall = _timed(run, device)
                with torch.no_grad():
                    fooled = int((model(out[-1]).argmax(1) != y).sum())
                print(f"| {name}-{steps} | {every} | {wall:.3f} | {counted} | {fooled}/{n} |")
    finally:
        _driver.compact_every = original


def throughput(device: torch.device, quick: bool) -> None:
    import torchvision

    from robtest.evaluate import evaluate_accuracy

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).to(device).eval()
    n, batch = (16, 8) if quick else (512, 256)
    x = torch.rand(n, 3, 32, 32)
    with torch.no_grad():
        y = torch.cat([model(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, n, batch)])
    opts = {"steps": 2, "targets": 1, "queries": 5} if quick else {}
    print("| variant | images/s | accuracy | vs fp32 |")
    print("|---|---|---|---|")
    ref = None
    for name, kw in (("fp32", {}), ("bf16", {"precision": "bf16"}), ("channels_last", {"channels_last": True}),
                     ("bf16 + channels_last", {"precision": "bf16", "channels_last": True})):
        got: list = []
        wall = _timed(lambda kw=kw, got=got: got.append(evaluate_accuracy(
            model, (x, y), attack="auto", eps=1 / 255, batch_size=batch, device=device, checks=False, **kw,
            **opts)), device)
        m = got[0]
        ref = m.value if ref is None else ref
        print(f"| {name} | {m.n / wall:.1f} | {m.value:.4f} | {m.value - ref:+.4f} |")


PROJECT = textwrap.dedent(
    """
    import pytest, torch

    @pytest.fixture(scope="session")
    def robust_model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))

    @pytest.fixture(scope="session")
    def robust_data():
        from robtest.data import digits_tensors
        return digits_tensors("test")
    """
)
TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.accuracy_floor(attack="pgd", eps=0.05, floor=0.0, steps=5)
    def test_a():
        pass

    @pytest.mark.confidence_ceiling(ceiling=1.0, source="uniform", samples=64)
    def test_b():
        pass

    @pytest.mark.offset_invariance(max_drop=1.0, grid=5)
    def test_c():
        pass
    """
)


def xdist(device: torch.device, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "conftest.py"), "w", encoding="utf-8") as f:
            f.write(PROJECT)
        with open(os.path.join(tmp, "test_gpu.py"), "w", encoding="utf-8") as f:
            f.write(TESTS)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--robust", f"--robust-device={device}",
               "-n", "2", "-q"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t0
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    print(f"- `pytest --robust --robust-device {device} -n 2` on 3 tests: exit {proc.returncode} in {wall:.1f} s, "
          f"{proc.stdout.count('robustness summary')} summary; {last}")


CHECKS = {"placement": placement, "syncs": syncs, "throughput": throughput, "xdist": xdist}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test of the script itself)")
    p.add_argument("--only", choices=sorted(CHECKS), action="append")
    a = p.parse_args()
    device = torch.device(a.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    print(f"## GPU checks on {device} ({gpu}), torch {torch.__version__}{' (quick)' if a.quick else ''}\n")
    failed = []
    for name in a.only or list(CHECKS):
        print(f"### {name}\n")
        try:
            CHECKS[name](device, a.quick)
        except Exception:  # noqa: BLE001 - one broken check must not hide the others' figures
            failed.append(name)
            print("```text\n" + traceback.format_exc() + "```")
        print()
    if failed:
        print(f"failed checks: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
