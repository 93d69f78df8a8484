"""benchmarks/gpu_check.py, the script a session lent a GPU runs first, works: here on the CPU at small sizes
(its CUDA-only parts, the sync counts, print a dash), with and without torchattacks, so it has not rotted by
the time a GPU is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tmp_path, *args: str) -> tuple[str, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "figures.json"
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--device", "cpu", "--quick",
           "--json", str(out), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_gpu_check_runs_on_the_cpu(tmp_path):
    out, figures = _run(tmp_path)
    assert figures["failed"] == [] and figures["device"] == "cpu" and figures["quick"] is True
    # the model comes back as it was; the CPU-vs-device outcomes of auto and of every property
    assert "requires_grad as it was: True" in out and " 0 of 540 outcomes differ" in out
    assert figures["placement"]["given_back"] is True
    props = figures["outcomes"]
    assert len(props) == 10 and props["accuracy, auto ε=0.1"]["per_sample"]["outcomes"]["differ"] == 0
    # PGD-10 ratios to the floor, end to end, auto vs AutoAttack, fp32 vs bf16, host syncs
    assert set(figures["pgd"]["by_batch"]) == {"2", "8"}
    assert all(r["robtest"] > 0 and r["early_stop"] > 0 for r in figures["pgd"]["by_batch"].values())
    assert set(figures["e2e"]["runs"]) == {"robtest, checks off", "robtest, checks on", "torchattacks plain loop"}
    assert set(figures["auto"]["runs"]) == {"robtest auto, checks on", "robtest auto, checks off",
                                            "torchattacks AutoAttack standard"}
    assert set(figures["precision"]["variants"]) == {"fp32", "bf16", "channels_last", "bf16 + channels_last"}
    for attack in ("PGD-40", "APGD-50"):  # compacting every step or every 8: the same points fooled
        rows = [r for r in figures["syncs"] if r["attack"] == attack]
        assert len(rows) == 2 and rows[0]["fooled"] == rows[1]["fooled"], rows
    assert "| bf16 + channels_last |" in out and "| robtest auto, checks on |" in out


def test_gpu_check_without_torchattacks(capsys, monkeypatch):
    """torchattacks missing: its rows show a dash, robtest's are measured (in this process, the pgd check)."""
    import torch

    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    import gpu_check

    monkeypatch.setattr(gpu_check, "_TA", [])
    monkeypatch.setattr(gpu_check, "RESULTS", {})
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # import torchattacks now raises ImportError
    gpu_check.pgd_ratios(torch.device("cpu"), True)
    out = capsys.readouterr().out
    assert "torchattacks is not installed" in out and "| 8 |" in out and "| — |" in out
    rows = gpu_check.RESULTS["pgd"]["by_batch"].values()
    assert all(r["torchattacks"] is None and r["robtest"] > 0 for r in rows)
