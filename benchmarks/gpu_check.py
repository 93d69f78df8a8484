"""The GPU checks in one short run, for a session that is lent a GPU (minutes of device time for all tries):

    python benchmarks/gpu_check.py --json gpu_check.json                       # the GPU machine: ~3 minutes
    python benchmarks/gpu_check.py --device cpu --quick --json /tmp/g.json     # the smoke test (tests/)

Default checks, in this order (``--only NAME`` picks some, ``--all`` adds the extra ones):

1. ``placement``: a model on the CPU, in train mode, with one frozen parameter, evaluated on the device by
   ``evaluate_accuracy``, by a ``RobustSession`` property, and by an evaluation the model aborts with an
   exception: it must come back exactly so each time; PGD-10 outcomes on the device vs the CPU.
2. ``outcomes`` (a): a small CNN trained on the digits (on the CPU), its copy evaluated on the device: the
   per-sample outcomes of ``evaluate_accuracy(attack="auto")`` and one run of every property of the ``robust``
   fixture, CPU vs device (discrete outcomes equal; continuous values to float rounding).
3. ``pgd`` (b, c): PGD-10 L∞ (ε=8/255) on a random-weight ResNet-18 at 3×32×32, batch 8 / 32 / 256, as a ratio to
   the eager floor (10 × forward + backward to the input): robtest's fixed budget (``early_stop=False``),
   torchattacks' PGD, and robtest's default early stop.
4. ``e2e`` (d): PGD-10 at ε=1/255 over 2,048 images end to end (data on the host, batches of 256), images/s:
   ``evaluate_accuracy`` with the checks on and off, and the same loop written with torchattacks.
5. ``auto`` (e): ``attack="auto"`` (checks on and off) against torchattacks' ``AutoAttack(version="standard")``
   on a PGD-trained digits CNN (trained on the device), 540 test points, ε=0.1: time and both accuracies.
6. ``precision`` (f): ``evaluate_accuracy(attack="auto", eps=1/255)`` on the ResNet-18, 256 images, in fp32,
   bf16, channels_last and both: images/s, accuracy, and how many outcomes differ from fp32.
7. ``syncs``: PGD-40 and APGD-50 compacting every step vs every 8: wall time, host syncs on CUDA.

Extra (``--all``, or by name): ``auto-resnet`` (``auto`` vs AutoAttack on the ResNet-18, 256 images, ε=1/255),
``xdist`` (``pytest --robust --robust-device DEVICE -n 2`` on a generated project), ``suites`` (``pytest
--robust suites/ -n 4`` on the device and on the CPU, verdicts compared test by test).

Without torchattacks its columns show a dash; without CUDA the device is the CPU (a smoke test of the script,
not a measurement). Each check runs on its own: one that fails prints its error and the others still run.
Prints Markdown; ``--json PATH`` also writes every figure there. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from _common import floor_loop, median, paired_ratio, time_paired  # noqa: E402

#: Every figure of the run, by check; written as JSON by --json.
RESULTS: dict[str, Any] = {}
_TA: list[Any] = []  # torchattacks, imported once (None when missing)


def _torchattacks() -> Any:
    if not _TA:
        try:
            import torchattacks
        except ImportError:
            torchattacks = None
            print("_torchattacks is not installed: its rows show a dash (pip install torchattacks)_\n")
        _TA.append(torchattacks)
    return _TA[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def _f(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def _speed_model(device: torch.device, quick: bool) -> nn.Module:
    """A random-weight ResNet-18 for 3×32×32 inputs (``--quick``: a small CNN, the same shapes), eval mode, its
    parameters frozen (every library then differentiates with respect to the input only)."""
    torch.manual_seed(0)
    if quick:
        from robtest.zoo import small_cnn

        model = small_cnn(3, width=8)
    else:
        import torchvision

        model = torchvision.models.resnet18(weights=None, num_classes=10)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _own_labels(model: nn.Module, x: torch.Tensor, device: torch.device, batch: int = 256) -> torch.Tensor:
    """The model's own clean predictions (clean accuracy 1: robust accuracy measures the attack alone), on x's
    device."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch].to(device)).argmax(1).to(x.device) for i in range(0, len(x), batch)])


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator(device="cpu").manual_seed(seed), device="cpu")


# -- 1. placement ------------------------------------------------------------------------------------------------

class _Aborts(nn.Module):
    """The model, raising on its ``at``-th forward call."""

    def __init__(self, model: nn.Module, at: int) -> None:
        super().__init__()
        self.model, self.at, self.calls = model, at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("aborted by the model")
        return self.model(x)


def placement(device: torch.device, quick: bool) -> None:
    from robtest.data import digits_tensors
    from robtest.evaluate import evaluate_accuracy
    from robtest.session import RobustSession
    from robtest.zoo import mlp, train_classifier

    x, y = digits_tensors("train")
    model = train_classifier(mlp(hidden=(64,)), x, y, epochs=5 if quick else 15, lr=3e-3, seed=0, reinit=True)
    model.train()
    first = next(model.parameters())
    first.requires_grad_(False)
    data = digits_tensors("test")

    def as_it_was() -> bool:
        params = list(model.parameters())
        return (all(p.device.type == "cpu" for p in params) and model.training and not first.requires_grad
                and all(p.requires_grad for p in params[1:]))

    kw = {"attack": "pgd", "eps": 0.1, "steps": 10, "checks": False}
    on_dev = evaluate_accuracy(model, data, device=device, **kw)
    after_evaluate = as_it_was()
    on_cpu = evaluate_accuracy(model, data, device="cpu", **kw)
    with RobustSession(model, data, device=device) as robust:
        robust.accuracy(attack="fgsm", eps=0.1)
        between_properties = as_it_was()
    aborted = False
    try:
        evaluate_accuracy(_Aborts(model, at=4), data, device=device, **kw)
    except RuntimeError as err:
        aborted = "aborted by the model" in str(err)
    after_error = as_it_was()
    differ = sum(a != b for a, b in zip(on_dev.details["outcomes"], on_cpu.details["outcomes"], strict=True))
    back = after_evaluate and between_properties and after_error and aborted
    print(f"- placement on {device}: model given back on the CPU, in train mode, requires_grad as it was: {back} "
          f"(after evaluate_accuracy {after_evaluate}, between two session properties {between_properties}, "
          f"after an exception mid-evaluation {after_error})")
    print(f"- PGD-10 accuracy {on_dev.value:.4f} on {device} vs {on_cpu.value:.4f} on the CPU; "
          f"{differ} of {on_dev.n} outcomes differ (float rounding only)")
    RESULTS["placement"] = {"given_back": back, "after_evaluate": after_evaluate,
                            "between_properties": between_properties, "after_exception": after_error,
                            "accuracy_device": on_dev.value, "accuracy_cpu": on_cpu.value, "outcomes_differ": differ,
                            "n": on_dev.n}


# -- 2. outcomes: CPU vs device, per sample ------------------------------------------------------------------------

def _per_sample(a: dict, b: dict) -> dict[str, dict[str, float]]:
    """For every list of numbers two measurements' details share: how many entries differ, the largest |Δ|."""
    out = {}
    for key, va in a.items():
        vb = b.get(key)
        if key == "sample_ids" or not isinstance(va, list) or not isinstance(vb, list) or len(va) != len(vb) or not va:
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (*va[:64], *vb[:64])):
            continue
        exact = all(isinstance(v, int) for v in va[:64])
        diffs = [abs(float(p) - float(q)) for p, q in zip(va, vb, strict=True)]
        tol = 0.0 if exact else 1e-4 * max(1.0, max(abs(float(v)) for v in va))
        out[key] = {"n": len(va), "differ": sum(d > tol for d in diffs), "max_abs": max(diffs), "exact": exact}
    return out


def _measurement(result: Any) -> Any:
    return getattr(result, "measurement", result)


def outcomes(device: torch.device, quick: bool) -> None:
    from hypothesis.database import InMemoryExampleDatabase

    from robtest.data import digits_tensors
    from robtest.session import RobustSession
    from robtest.zoo import train_classifier

    x, y = digits_tensors("train")
    torch.manual_seed(0)
    # a small CNN whose layers the global Lipschitz bound knows (max pooling, no adaptive pooling)
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10))
    model = train_classifier(cnn, x, y, epochs=1 if quick else 4, lr=3e-3, seed=0, reinit=True)
    data = digits_tensors("test")
    n = 64 if quick else None
    small = {"steps": 5, "targets": 2, "queries": 20} if quick else {}
    calls: list[tuple[str, Callable[[RobustSession], Any]]] = [
        ("accuracy, auto ε=0.1", lambda s: s.accuracy(attack="auto", eps=0.1, **small)),
        ("accuracy_floor, PGD-20 sequential", lambda s: s.accuracy_floor(eps=0.1, floor=0.5, attack="pgd", steps=20,
                                                                          sequential=True)),
        ("confidence_ceiling, fooling images", lambda s: s.confidence_ceiling(ceiling=1.0, samples=32 if quick
                                                                              else 200, steps=10 if quick else 100)),
        ("offset_invariance", lambda s: s.offset_invariance(max_drop=1.0)),
        ("power_law", lambda s: s.power_law(exponent=(0.0, 9.0), min_errors=1)),
        ("lipschitz local", lambda s: s.lipschitz(max=1e9, estimate="local", steps=5 if quick else 30)),
        ("lipschitz sensitivity", lambda s: s.lipschitz(max=1e9, estimate="sensitivity")),
        ("lipschitz global", lambda s: s.lipschitz(max=1e9, estimate="global", steps=5 if quick else 30)),
        ("min_perturbation, FGSM", lambda s: s.min_perturbation(floor=0.0, bisections=6 if quick else 12)),
        ("fuzz, offsets", lambda s: s.fuzz(strategy="offsets", max_examples=5 if quick else 30, max_flips=10)),
    ]
    twin = copy.deepcopy(model)
    sessions = []
    for m, dev in ((model, "cpu"), (twin, device)):
        s = RobustSession(m, data, device=dev, samples=n, seed=0)
        s.hypothesis_database = InMemoryExampleDatabase()  # a fresh search on each device, same seed
        sessions.append(s)
    print(f"small CNN trained on the digits (CPU); the same weights evaluated on the CPU and on {device}"
          f"{f', {n} samples' if n else ''}\n")
    print(f"| property | CPU | {device} | per sample: entries that differ / of, largest difference |")
    print("|---|---|---|---|")
    got: dict[str, Any] = {}
    for label, call in calls:
        a, b = (_measurement(call(s)) for s in sessions)
        lists = _per_sample(a.details, b.details)
        shown = "; ".join(f"{k} {v['differ']}/{v['n']}" + ("" if v["exact"] else f" ≤{v['max_abs']:.1e}")
                          for k, v in lists.items()) or "—"
        print(f"| {label} | {a.value:.6g} | {b.value:.6g} | {shown} |")
        got[label] = {"cpu": a.value, "device": b.value, "per_sample": lists}
    RESULTS["outcomes"] = got


# -- 3. PGD-10 fixed budget and early stop, ratios to the floor ---------------------------------------------------

def pgd_ratios(device: torch.device, quick: bool) -> None:
    from robtest.attacks import pgd
    from robtest.rng import SampleRNG

    ta = _torchattacks()
    model = _speed_model(device, quick)
    eps, steps = 8 / 255, 10
    repeats = 1 if quick else 15
    rows = {}
    print(f"PGD-{steps} L∞ ε=8/255, step 2.5·ε/{steps}, random start; medians of {repeats} paired rounds; "
          "the floor is 10 × (forward + backward to the input), eager\n")
    print("| batch | floor ms | robtest fixed budget / floor | torchattacks / floor | robtest early stop / floor "
          "| fooled (early stop) |")
    print("|---|---|---|---|---|---|")
    for batch in ((2, 8) if quick else (8, 32, 256)):
        x = _images(batch).to(device)
        y = _own_labels(model, x, device)
        ids = torch.arange(batch, device=device)
        runners: dict[str, Callable[[], Any]] = {
            "floor": lambda x=x, y=y: floor_loop(model, x, y, steps),
            "robtest": lambda x=x, y=y, ids=ids: pgd(model, x, y, eps=eps, steps=steps, early_stop=False,
                                                       generator=SampleRNG(0, ids)),
            "early": lambda x=x, y=y, ids=ids: pgd(model, x, y, eps=eps, steps=steps, generator=SampleRNG(0, ids)),
        }
        if ta is not None:
            atk = ta.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
            runners["torchattacks"] = lambda x=x, y=y, atk=atk: atk(x, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time_paired(runners, repeats, device)
            with torch.no_grad():
                fooled = int((model(runners["early"]()).argmax(1) != y).sum())
        r = {"floor_ms": 1e3 * median(t["floor"]), "robtest": paired_ratio(t, "robtest", "floor"),
             "torchattacks": paired_ratio(t, "torchattacks", "floor") if ta is not None else None,
             "early_stop": paired_ratio(t, "early", "floor"), "fooled": fooled}
        rows[batch] = r
        print(f"| {batch} | {r['floor_ms']:.2f} | {r['robtest']:.3f} | {_f(r['torchattacks'])} | "
              f"{r['early_stop']:.3f} | {fooled}/{batch} |")
    RESULTS["pgd"] = {"eps": eps, "steps": steps, "repeats": repeats, "by_batch": rows}


# -- 4. end to end ------------------------------------------------------------------------------------------------

def e2e(device: torch.device, quick: bool) -> None:
    from robtest.evaluate import evaluate_accuracy

    ta = _torchattacks()
    model = _speed_model(device, quick)
    n, batch, eps, steps = (32, 16, 1 / 255, 10) if quick else (2048, 256, 1 / 255, 10)
    repeats = 1 if quick else 3
    x = _images(n, seed=1)
    y = _own_labels(model, x, device)  # data on the host, as a DataLoader gives it
    accs: dict[str, float] = {}

    def robtest(checks: bool) -> None:
        m = evaluate_accuracy(model, (x, y), attack="pgd", eps=eps, steps=steps, batch_size=batch, device=device,
                              checks=checks)
        accs[f"robtest, checks {'on' if checks else 'off'}"] = m.value

    runners: dict[str, Callable[[], Any]] = {"robtest, checks off": lambda: robtest(False),
                                             "robtest, checks on": lambda: robtest(True)}
    if ta is not None:
        atk = ta.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)

        def plain_loop() -> None:
            correct = 0
            for i in range(0, n, batch):
                xb, yb = x[i:i + batch].to(device), y[i:i + batch].to(device)
                xa = atk(xb, yb)
                with torch.no_grad():
                    correct += int((model(xa).argmax(1) == yb).sum())
            accs["torchattacks plain loop"] = correct / n

        runners["torchattacks plain loop"] = plain_loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time_paired(runners, repeats, device)
    print(f"PGD-{steps} L∞ ε=1/255 over {n} images (host data, batches of {batch}; robtest stops early on fooled "
          f"points, its default); medians of {repeats} paired rounds\n")
    print("| run | images/s | accuracy | s |")
    print("|---|---|---|---|")
    rows = {}
    for k in ("robtest, checks off", "robtest, checks on", "torchattacks plain loop"):
        if k not in t:
            print(f"| {k} | — | — | — |")
            rows[k] = None
            continue
        s = median(t[k])
        rows[k] = {"images_per_s": n / s, "accuracy": accs[k], "seconds": s}
        print(f"| {k} | {n / s:.0f} | {accs[k]:.4f} | {s:.3f} |")
    share = 1 - median(t["robtest, checks off"]) / median(t["robtest, checks on"])
    print(f"\nthe checks' share of the evaluation with them on: {share:.2f}")
    RESULTS["e2e"] = {"images": n, "batch": batch, "eps": eps, "steps": steps, "runs": rows, "checks_share": share}


# -- 5. auto vs AutoAttack ----------------------------------------------------------------------------------------

def _auto_vs_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, device: torch.device,
                        quick: bool, key: str, what: str) -> None:
    from robtest.evaluate import evaluate_accuracy

    ta = _torchattacks()
    opts = {"steps": 5, "targets": 2, "queries": 20} if quick else {}

    def robtest(checks: bool, xs: torch.Tensor, ys: torch.Tensor) -> float:
        return evaluate_accuracy(model, (xs, ys), attack="auto", eps=eps, device=device, checks=checks,
                                 **opts).value

    def autoattack(xs: torch.Tensor, ys: torch.Tensor) -> float:
        aa = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0)
        correct = 0
        for i in range(0, len(xs), 256):
            xb, yb = xs[i:i + 256].to(device), ys[i:i + 256].to(device)
            xa = aa(xb, yb)
            with torch.no_grad():
                correct += int((model(xa).argmax(1) == yb).sum())
        return correct / len(xs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not quick:  # warm-up on a few points (kernels, cuDNN's choices), then one timed run each
            robtest(True, x[:16], y[:16])
            if ta is not None:
                autoattack(x[:16], y[:16])
        runs: dict[str, tuple[float, float] | None] = {
            "robtest auto, checks on": _timed(lambda: robtest(True, x, y), device),
            "robtest auto, checks off": _timed(lambda: robtest(False, x, y), device),
            "torchattacks AutoAttack standard": _timed(lambda: autoattack(x, y), device) if ta is not None else None,
        }
    ref = runs["torchattacks AutoAttack standard"]
    print(f"{what}, {len(x)} points, ε={eps:g}; one timed run each{'' if quick else ' after a warm-up'}\n")
    print("| attack | accuracy | s | time / AutoAttack |")
    print("|---|---|---|---|")
    out = {}
    for k, r in runs.items():
        if r is None:
            print(f"| {k} | — | — | — |")
            out[k] = None
            continue
        ratio = r[0] / ref[0] if ref is not None else None
        print(f"| {k} | {r[1]:.4f} | {r[0]:.2f} | {_f(ratio)} |")
        out[k] = {"accuracy": r[1], "seconds": r[0], "time_over_autoattack": ratio}
    RESULTS[key] = {"points": len(x), "eps": eps, "runs": out}


def auto(device: torch.device, quick: bool) -> None:
    from robtest.data import digits_tensors
    from robtest.zoo import small_cnn, train_classifier

    x, y = digits_tensors("train")
    t0 = time.perf_counter()
    # trained on the device: train_classifier's PGD recipe on CUDA was one of issue 19's crashes
    model = train_classifier(small_cnn(width=16).to(device), x.to(device), y.to(device), adversarial="pgd",
                             eps=0.1, epochs=1 if quick else 10, lr=3e-3, seed=0, reinit=True)
    trained = time.perf_counter() - t0
    xt, yt = digits_tensors("test")
    if quick:
        xt, yt = xt[:16], yt[:16]
    _auto_vs_autoattack(model, xt, yt, 0.1, device, quick, "auto",
                        f"PGD-trained digits CNN (small_cnn width 16, PGD-7 ε=0.1, trained on {device} in "
                        f"{trained:.1f} s)")


def auto_resnet(device: torch.device, quick: bool) -> None:
    model = _speed_model(device, quick)
    x = _images(16 if quick else 256, seed=2)
    _auto_vs_autoattack(model, x, _own_labels(model, x, device), 1 / 255, device, quick, "auto-resnet",
                        "random-weight ResNet-18 (labels: its own predictions)")


# -- 6. fp32 vs bf16 ---------------------------------------------------------------------------------------------

def precision(device: torch.device, quick: bool) -> None:
    from robtest.evaluate import evaluate_accuracy

    model = _speed_model(device, quick)
    n, batch = (16, 8) if quick else (256, 256)
    x = _images(n, seed=3)
    y = _own_labels(model, x, device)
    opts = {"steps": 2, "targets": 1, "queries": 5} if quick else {}
    print(f"`auto` at ε=1/255 on {n} images (labels: the model's own predictions), checks off; points judged in "
          "fp32, and re-attacked in fp32 where the bf16 attack alone called them fooled\n")
    print("| variant | images/s | accuracy | vs fp32 | outcomes differing from fp32 |")
    print("|---|---|---|---|---|")
    ref = None
    rows = {}
    for name, kw in (("fp32", {}), ("bf16", {"precision": "bf16"}), ("channels_last", {"channels_last": True}),
                     ("bf16 + channels_last", {"precision": "bf16", "channels_last": True})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = {"attack": "auto", "eps": 1 / 255, "batch_size": batch, "device": device, "checks": False, **kw,
                   **opts}
            evaluate_accuracy(model, (x[:16], y[:16]), **run)  # warm-up
            wall, m = _timed(lambda run=run: evaluate_accuracy(model, (x, y), **run), device)
        if ref is None:
            ref = m
        differ = sum(a != b for a, b in zip(m.details["outcomes"], ref.details["outcomes"], strict=True))
        rows[name] = {"images_per_s": m.n / wall, "accuracy": m.value, "vs_fp32": m.value - ref.value,
                      "outcomes_differ": differ}
        print(f"| {name} | {m.n / wall:.1f} | {m.value:.4f} | {m.value - ref.value:+.4f} | {differ}/{m.n} |")
    RESULTS["precision"] = {"images": n, "eps": 1 / 255, "variants": rows}


# -- 7. host syncs -------------------------------------------------------------------------------------------------

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
    rows = []
    try:
        for name, attack, steps in (("PGD", pgd, 40), ("APGD", apgd, 50)):
            for every in (1, 8):
                _driver.compact_every = lambda _device, every=every: every
                out: list[torch.Tensor] = []

                def run(attack=attack, steps=steps, out=out):
                    out.append(attack(model, x, y, eps=0.1, steps=steps,
                                      generator=SampleRNG(0, torch.arange(n, device=device))))

                counted: int | None = None
                if device.type == "cuda":
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        torch.cuda.set_sync_debug_mode("warn")
                        try:
                            wall = _timed(run, device)[0]
                        finally:
                            torch.cuda.set_sync_debug_mode("default")
                    counted = sum("synchroniz" in str(w.message) for w in caught)
                else:
                    wall = _timed(run, device)[0]
                with torch.no_grad():
                    fooled = int((model(out[-1]).argmax(1) != y).sum())
                rows.append({"attack": f"{name}-{steps}", "compact_every": every, "seconds": wall,
                             "host_syncs": counted, "fooled": fooled, "n": n})
                print(f"| {name}-{steps} | {every} | {wall:.3f} | {'—' if counted is None else counted} | "
                      f"{fooled}/{n} |")
    finally:
        _driver.compact_every = original
    RESULTS["syncs"] = rows


# -- extra: xdist on the device, the suites ----------------------------------------------------------------------

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


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}


def xdist(device: torch.device, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "conftest.py"), "w", encoding="utf-8") as f:
            f.write(PROJECT)
        with open(os.path.join(tmp, "test_gpu.py"), "w", encoding="utf-8") as f:
            f.write(TESTS)
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--robust", f"--robust-device={device}",
               "-n", "2", "-q"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=_env(max(1, (os.cpu_count() or 2) // 2)), capture_output=True,
                              text=True, timeout=600)
        wall = time.perf_counter() - t0
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    print(f"- `pytest --robust --robust-device {device} -n 2` on 3 tests: exit {proc.returncode} in {wall:.1f} s, "
          f"{proc.stdout.count('robustness summary')} summary; {last}")
    RESULTS["xdist"] = {"exit": proc.returncode, "seconds": wall, "summaries": proc.stdout.count("robustness summary")}


def suites(device: torch.device, quick: bool) -> None:
    """``pytest --robust suites/`` with 4 workers on the device and on the CPU; the verdicts compared."""
    workers = 4
    threads = max(1, (os.cpu_count() or workers) // workers)
    paths = ["suites/goodfellow2015", "suites/fuzzing"] if quick else ["suites/"]
    verdicts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dev in (str(device), "cpu"):
            report = os.path.join(tmp, f"{dev.replace(':', '')}.json")
            cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--robust", f"--robust-device={dev}",
                   f"--robust-report={report}", "-n", str(workers), "-q", *paths]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=_env(threads), capture_output=True, text=True, timeout=900)
            wall = time.perf_counter() - t0
            last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
            print(f"- `pytest --robust --robust-device {dev} {' '.join(paths)} -n {workers}`: exit {proc.returncode} "
                  f"in {wall:.0f} s; {last}")
            try:
                with open(report, encoding="utf-8") as f:
                    records = json.load(f).get("records", [])
            except (OSError, ValueError):
                records = []
            seen: dict[tuple[str, str], int] = {}
            got = {}
            for r in records:  # a test may record one property more than once: number them
                k = (str(r.get("test")), str(r.get("property")))
                seen[k] = seen.get(k, 0) + 1
                got[(*k, seen[k])] = r.get("verdict")
            verdicts[dev] = got
            RESULTS.setdefault("suites", {})[dev] = {"exit": proc.returncode, "seconds": wall, "last": last}
            if dev == "cpu" and str(device) == "cpu":
                break
    a = verdicts.get(str(device), {})
    b = verdicts.get("cpu", a)
    differ = sorted(f"{k[0]} {k[1]} #{k[2]}: {a.get(k)} vs {b.get(k)}" for k in set(a) | set(b)
                    if a.get(k) != b.get(k))
    print(f"- verdicts on {device} vs the CPU: {len(a)} records, {len(differ)} differ"
          + "".join(f"\n  - {d}" for d in differ[:20]))
    RESULTS["suites"]["verdicts_differ"] = differ


DEFAULT = {"placement": placement, "outcomes": outcomes, "pgd": pgd_ratios, "e2e": e2e, "auto": auto,
           "precision": precision, "syncs": syncs}
EXTRA = {"auto-resnet": auto_resnet, "xdist": xdist, "suites": suites}
CHECKS = {**DEFAULT, **EXTRA}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes and a small CNN (a smoke test of the script)")
    p.add_argument("--only", choices=sorted(CHECKS), action="append", help="run this check (repeatable)")
    p.add_argument("--all", action="store_true", help="also the extra checks: " + ", ".join(EXTRA))
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")  # robtest's indicators and torch's notices are not what is measured here
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"no GPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    ta = _torchattacks()
    header = (f"## GPU checks on {device} ({what}), torch {torch.__version__}, torchattacks "
              f"{getattr(ta, '__version__', 'not installed')}{' (quick)' if a.quick else ''}")
    print(header + "\n")
    RESULTS.update({"device": str(device), "device_name": what, "torch": torch.__version__,
                    "torchattacks": getattr(ta, "__version__", None), "quick": a.quick,
                    "date": time.strftime("%Y-%m-%d %H:%M")})
    names = a.only or [*DEFAULT, *(EXTRA if a.all else ())]
    failed, t_all = [], time.perf_counter()
    for name in names:
        print(f"### {name}\n")
        t0 = time.perf_counter()
        try:
            CHECKS[name](device, a.quick)
        except Exception:  # noqa: BLE001 - one broken check must not hide the others' figures
            failed.append(name)
            print("```text\n" + traceback.format_exc() + "```")
        RESULTS.setdefault("seconds", {})[name] = time.perf_counter() - t0
        print(f"\n_{name}: {time.perf_counter() - t0:.1f} s_\n")
    RESULTS["failed"] = failed
    print(f"all checks: {time.perf_counter() - t_all:.0f} s")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(RESULTS, f, indent=2, default=str)
        print(f"figures written to {a.json}")
    if failed:
        print(f"failed checks: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
