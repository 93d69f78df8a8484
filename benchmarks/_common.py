"""Shared pieces of the benchmarks: the models, the compute floor, paired timing, peak memory.

Not part of the robtest package and not collected by pytest: the scripts next to this file import it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robtest.zoo import galloway_cnn

HERE = os.path.dirname(os.path.abspath(__file__))


# --- models ---------------------------------------------------------------------------------------------------

def resnet18(classes: int = 10) -> nn.Module:
    import torchvision

    return torchvision.models.resnet18(weights=None, num_classes=classes)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    shape: tuple[int, int, int]
    build: Callable[[], nn.Module]


MODELS: dict[str, ModelSpec] = {
    # robtest.zoo's Table 2 CNN at n_f = 64 (the suites use a narrower one to train in seconds).
    "galloway-28x28x1": ModelSpec("galloway-28x28x1", (1, 28, 28), lambda: galloway_cnn(1, n_f=64, input_size=28)),
    "galloway-32x32x3": ModelSpec("galloway-32x32x3", (3, 32, 32), lambda: galloway_cnn(3, n_f=64, input_size=32)),
    "resnet18-32x32x3": ModelSpec("resnet18-32x32x3", (3, 32, 32), resnet18),
    "resnet18-224x224x3": ModelSpec("resnet18-224x224x3", (3, 224, 224), resnet18),
}


def make_case(model_name: str, batch: int, device: torch.device, seed: int = 0):
    """A random-weight model in eval mode and a batch in [0, 1] labelled with the model's own clean predictions
    (clean accuracy 100%, so robust accuracy measures the attack's strength alone)."""
    torch.manual_seed(seed)
    spec = MODELS[model_name]
    model = spec.build().to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # every library then differentiates w.r.t. the input only
    x = torch.rand((batch, *spec.shape), generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


# --- the compute floor ------------------------------------------------------------------------------------------

def floor_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
    """steps × (forward + backward w.r.t. the input) on the same batch, nothing else: what any gradient attack
    must pay."""
    xa = x.detach().requires_grad_(True)
    g = None
    for _ in range(steps):
        (g,) = torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)
    return g


# --- timing -------------------------------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_paired(runners: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each runner over ``repeats`` rounds; within a round every runner runs once, and the order
    alternates (forward, then reversed) so drift and neighbours' load hit all runners alike."""
    names = list(runners)
    for _ in range(warmup):
        for n in names:
            runners[n]()
    sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            gc.collect()
            sync(device)
            t0 = time.perf_counter()
            runners[n]()
            sync(device)
            times[n].append(time.perf_counter() - t0)
    return times


def median(v: list[float]) -> float:
    return statistics.median(v)


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of t_a / t_b measured in the same round (more robust than a ratio of medians)."""
    return statistics.median(ta / tb for ta, tb in zip(times[a], times[b], strict=True))


# --- peak memory ------------------------------------------------------------------------------------------------

def rss_mib() -> float:
    """Anonymous resident memory now (Linux /proc; elsewhere the process high-water mark, a poorer stand-in)."""
    try:
        with open("/proc/self/statm") as f:
            fields = f.read().split()
        # resident minus file-backed pages: code of libtorch paged in on first use is not working memory
        return (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / 1024 if sys.platform != "darwin" else kb / 2**20


class RssSampler:
    """Samples the resident memory every ``interval`` s on a thread (torch ops release the GIL) and keeps the
    peak: the high-water mark of the process is useless here, imports already set it."""

    def __init__(self, interval: float = 0.0005) -> None:
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = rss_mib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def measure_peak_in_subprocess(script: str, args: list[str]) -> dict:
    """Run ``script --memory-child ...`` in a fresh process and read back the JSON it prints last."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore",
                              # glibc: every block of 64 KiB or more is its own mapping, given back on free, so
                              # the resident size follows the live tensors instead of the heap's high-water mark
                              "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_memory_child(run: Callable[[], object], device: torch.device) -> dict:
    """Peak memory added by one call of ``run`` in this (fresh) process: CUDA peak allocated bytes, or on CPU
    the peak of the sampled resident memory above what it was before the call."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return {"peak_mib": (torch.cuda.max_memory_allocated(device) - base) / 2**20, "kind": "cuda allocated"}
    run()  # once unmeasured: first-use costs (kernels, thread pools, lazy imports) are not the attack's
    gc.collect()
    before = rss_mib()
    with RssSampler() as sampler:
        run()
    return {"peak_mib": sampler.peak - before, "kind": "CPU anonymous RSS peak above baseline (sampled)"}


# --- command line -----------------------------------------------------------------------------------------------

def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: torch's own choice); 1 steadies ratios on a busy machine")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default depends on mode)")
    p.add_argument("--quick", action="store_true", help="fewer cases and repeats: a few minutes on 2 CPU cores")
    p.add_argument("--full", action="store_true", help="also ResNet-18 at 224×224 (slow on CPU)")
    return p


def setup(args: argparse.Namespace) -> torch.device:
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    return dev


def machine_line(device: torch.device) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible"
    return (f"# {time.strftime('%Y-%m-%d %H:%M')} · {what} · torch {torch.__version__} · "
            f"{torch.get_num_threads()} torch threads · python {platform.python_version()}")


@contextlib.contextmanager
def flush_denormal(on: bool):
    """Flush denormals for the duration and give the user's setting back afterwards."""
    from robtest.zoo.train import flush_denormal_enabled

    before = flush_denormal_enabled()
    torch.set_flush_denormal(on)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def table(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub-markdown table, so the output pastes into BENCHMARKS.md as is."""
    w = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = lambda r: "| " + " | ".join(str(c).ljust(k) for c, k in zip(r, w, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (k + 2) for k in w) + "|", *map(line, rows)])
