"""benchmarks/gpu_check.py, the script a session lent a GPU runs first, works: here on the CPU at small sizes
(its CUDA-only parts, the sync counts, print a dash), so it has not rotted by the time a GPU is at hand."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_runs_on_the_cpu():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--device", "cpu", "--quick",
           "--only", "placement", "--only", "syncs", "--only", "throughput"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "requires_grad as it was: True" in out and " 0 of 540 outcomes differ" in out
    for attack in ("PGD-40", "APGD-50"):  # compacting every step or every 8: the same points fooled
        rows = [line.split("|") for line in out.splitlines() if line.startswith(f"| {attack} |")]
        assert len(rows) == 2 and rows[0][5] == rows[1][5], rows
    assert "| bf16 + channels_last |" in out
