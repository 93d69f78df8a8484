"""robtest's PGD against the bare compute floor: steps × (forward + backward w.r.t. the input), same batch.

    python benchmarks/bench_floor.py [--quick] [--full] [--device cuda] [--threads N] [--no-memory]

Fixed budget (``early_stop=False``) with a random start, so robtest does exactly ``steps`` forward+backward
passes like the floor; everything else it does (validation, eval mode, the ε-ball check, projection) is
overhead, and the ratio shows it. Timings are medians of paired, alternating rounds. Peak memory is read in a
fresh process per runner (CUDA: peak allocated bytes; CPU: peak of the sampled resident memory above the baseline).

On CUDA it also times the variants bf16 autocast (verdict rechecked in fp32), channels_last and torch.compile.
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    base_parser,
    floor_loop,
    machine_line,
    make_case,
    measure_peak_in_subprocess,
    median,
    paired_ratio,
    peak_memory_child,
    setup,
    table,
    time_paired,
)

import robtest  # noqa: E402,F401  (registers the attacks)
from robtest.attacks.pgd import pgd  # noqa: E402

STEPS = 20
EPS = {"linf": 2 / 255, "l2": 0.25}


def runners_for(model, x, y, norm: str, device: torch.device, variant: str = "fp32"):
    gen = torch.Generator(device=device)

    def robtest_pgd():
        gen.manual_seed(0)
        return pgd(model, x, y, eps=EPS[norm], norm=norm, steps=STEPS, early_stop=False, random_start=True,
                   generator=gen)

    def floor():
        return floor_loop(model, x, y, STEPS)

    if variant == "bf16":
        def wrap(fn):
            def run():
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    return fn()
            return run
        return {"floor": wrap(floor), "robtest": wrap(robtest_pgd)}
    return {"floor": floor, "robtest": robtest_pgd}


def prepare(model_name: str, batch: int, device: torch.device, variant: str):
    model, x, y = make_case(model_name, batch, device)
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    elif variant == "compile":
        model = torch.compile(model)
    return model, x, y


def memory_child(argv: list[str]) -> None:
    model_name, batch, norm, who, device = argv[0], int(argv[1]), argv[2], argv[3], torch.device(argv[4])
    model, x, y = make_case(model_name, batch, device)
    run = runners_for(model, x, y, norm, device)[who]
    print(__import__("json").dumps(peak_memory_child(run, device)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        return memory_child(sys.argv[2:])
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory measurement")
    args = p.parse_args()
    dev = setup(args)
    repeats = args.repeats or (5 if args.quick else 9)
    models = ["galloway-28x28x1", "resnet18-32x32x3"] if args.quick else [
        "galloway-28x28x1", "galloway-32x32x3", "resnet18-32x32x3"]
    if args.full:
        models.append("resnet18-224x224x3")
    batches = [1, 32, 256]
    norms = ["linf"] if args.quick else ["linf", "l2"]
    variants = ["fp32"] + (["bf16", "channels_last", "compile"] if dev.type == "cuda" else [])
    print(machine_line(dev))
    print(f"# PGD-{STEPS}, early_stop=False, random_start=True; {repeats} paired rounds; ratio = median of "
          "per-round t_robtest / t_floor")
    rows = []
    for variant in variants if not args.memory_only else []:
        for m in models:
            for b in batches:
                if dev.type == "cpu" and b == 256 and (m.startswith("resnet18-224") or
                                                       (args.quick and m.startswith("resnet18"))):
                    continue  # minutes per repeat on a CPU
                model, x, y = prepare(m, b, dev, variant)
                for norm in norms:
                    runners = runners_for(model, x, y, norm, dev, variant)
                    t = time_paired(runners, repeats, dev)
                    with torch.no_grad():  # the verdict is always rechecked in fp32, outside any autocast
                        acc = float((model(runners["robtest"]().float()).argmax(1) == y).float().mean())
                    rows.append([variant, m, b, norm, f"{median(t['floor']):.4f}", f"{median(t['robtest']):.4f}",
                                 f"{paired_ratio(t, 'robtest', 'floor'):.3f}", f"{acc:.3f}"])
                    print("  ", *rows[-1], flush=True)
    if rows:
        print()
        print(table(rows, ["variant", "model", "batch", "norm", "floor s", "robtest s", "robtest / floor",
                           "robust acc (fp32 recheck)"]))

    if args.no_memory:
        return
    mrows = []
    mem_cases = [("galloway-28x28x1", 32), ("galloway-28x28x1", 256), ("resnet18-32x32x3", 32)]
    if not args.quick:
        mem_cases.append(("resnet18-32x32x3", 256))
    for m, b in mem_cases:
        peaks, kind = {}, ""
        for who in ("floor", "robtest"):
            child = ["--memory-child", m, str(b), "linf", who, str(dev)]
            r = measure_peak_in_subprocess(os.path.abspath(__file__), child)
            peaks[who], kind = r["peak_mib"], r["kind"]
        ratio = peaks["robtest"] / peaks["floor"] if peaks["floor"] > 0 else float("nan")
        mrows.append([m, b, f"{peaks['floor']:.1f}", f"{peaks['robtest']:.1f}", f"{ratio:.2f}", kind])
    print()
    print(table(mrows, ["model", "batch", "floor peak MiB", "robtest peak MiB", "ratio", "measured as"]))


if __name__ == "__main__":
    main()
