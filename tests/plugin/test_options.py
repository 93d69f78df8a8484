"""--robust-device, --robust-samples, --robust-seed and friends: parsed when given, errors name the flag."""

from __future__ import annotations

import pytest

FLOOR = """
import pytest

@pytest.mark.accuracy_floor(attack="pgd", eps=0.1, floor=0.0, steps=3)
def test_floor():
    pass
"""


@pytest.mark.parametrize("args,message", [
    (["--robust-device=gpu"], "*argument --robust-device: expected auto, cpu, cuda or cuda:N but got 'gpu'*"),
    (["--robust-samples=0"], "*argument --robust-samples: expected an integer >= 1 but got '0'*"),
    (["--robust-samples=lots"], "*argument --robust-samples: expected an integer >= 1 but got 'lots'*"),
    (["--robust-seed=-1"], "*argument --robust-seed: expected a non-negative integer but got '-1'*"),
    (["--robust-rule=strict"], "*argument --robust-rule: expected one of point, confident, plausible*"),
    (["--robust-data=imagenet"], "*argument --robust-data: expected 'digits', 'digits28', 'mnist:PATH'*"),
    (["--robust-confidence=95"], "*argument --robust-confidence: expected a number in (0, 1)*"),
], ids=["device", "samples-zero", "samples-word", "seed-negative", "rule", "data", "confidence"])
def test_bad_flags(project: pytest.Pytester, args, message):
    project.makepyfile(FLOOR)
    result = project.runpytest("--robust", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_ini_value_names_the_ini_key(project: pytest.Pytester):
    project.makeini("[pytest]\nrobust_samples = many\n")
    project.makepyfile(FLOOR)
    result = project.runpytest("--robust")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option robust_samples: expected an integer >= 1 but got 'many'*"])


def test_samples_flag_and_ini(project: pytest.Pytester):
    project.makepyfile(FLOOR)
    project.runpytest("--robust", "--robust-samples=17").stdout.fnmatch_lines(["*n=17*"])
    project.makeini("[pytest]\nrobust_samples = 23\n")
    project.runpytest("--robust").stdout.fnmatch_lines(["*n=23*"])
    # The flag wins over the ini.
    project.runpytest("--robust", "--robust-samples=5").stdout.fnmatch_lines(["*n=5*"])


def test_cpu_device_and_seed_reproduce(project: pytest.Pytester):
    project.makepyfile(FLOOR)
    a = project.runpytest("--robust", "--robust-device=cpu", "--robust-seed=3", "--robust-samples=40")
    b = project.runpytest("--robust", "--robust-device=cpu", "--robust-seed=3", "--robust-samples=40")
    line = lambda r: [x for x in r.outlines if "test_floor" in x and "accuracy_floor" in x]  # noqa: E731
    assert line(a) and line(a) == line(b)


def test_cuda_without_cuda_is_a_clear_error(project: pytest.Pytester):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    project.makepyfile(FLOOR)
    result = project.runpytest("--robust", "--robust-device=cuda")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*device: 'cuda' asked for CUDA but torch sees no CUDA device*"])


def test_same_numbers_under_xdist(project: pytest.Pytester):
    pytest.importorskip("xdist")
    project.makepyfile(
        FLOOR
        + "\n@pytest.mark.accuracy_floor(attack='fgsm', eps=0.2, floor=0.0)\ndef test_other():\n    pass\n"
    )
    serial = project.runpytest_subprocess("--robust", "--robust-seed=1")
    parallel = project.runpytest_subprocess("--robust", "--robust-seed=1", "-n", "2")
    rows = lambda r: sorted(x for x in r.outlines if "accuracy_floor" in x and "::" in x)  # noqa: E731
    # the two summary rows (and any indicator lines, which must agree too)
    assert len([x for x in rows(serial) if x.startswith("test_")]) == 2
    assert [" ".join(r.split()) for r in rows(serial)] == [" ".join(r.split()) for r in rows(parallel)]
    assert parallel.stdout.str().count("robustness summary") == 1


def test_xdist_workers_share_the_cpu_threads(project: pytest.Pytester, monkeypatch):
    pytest.importorskip("xdist")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    project.makepyfile(
        """
        import os, torch

        def test_threads(robust):
            assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
        """
    )
    project.runpytest_subprocess("--robust", "-n", "2").assert_outcomes(passed=1)


def test_workers_spread_over_gpus(monkeypatch):
    import torch

    from robtest.models import spread_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert [spread_device("auto", w) for w in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert spread_device("cuda:1", 2) == "cuda:1" and spread_device("cpu", 1) == "cpu"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert spread_device("auto", 5) == "auto"


def test_precision_and_channels_last_reach_the_evaluation(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack="pgd", eps=0.1, floor=0.0, steps=5, sequential=False,
                                    allow=("incomplete_optimization", "gradient_free_wins"))
        def test_floor():
            pass
        """
    )
    import json

    project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=fp32.json").assert_outcomes(passed=1)
    project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=bf16.json", "--robust-precision=bf16",
                      "--robust-channels-last").assert_outcomes(passed=1)
    fp32, bf16 = (json.loads((project.path / f"{n}.json").read_text(encoding="utf-8")) for n in ("fp32", "bf16"))
    assert (fp32["run"]["precision"], fp32["run"]["channels_last"]) == ("fp32", False)
    assert (bf16["run"]["precision"], bf16["run"]["channels_last"]) == ("bf16", True)
    a, b = fp32["records"][0]["measurement"], bf16["records"][0]["measurement"]
    assert "(bf16 attack)" in b["context"] and "bf16" not in a["context"]
    assert abs(a["value"] - b["value"]) <= 0.05  # the evaluate_accuracy docstring's tolerance for bf16
    result = project.runpytest("--robust", "--robust-precision=fp16")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robust-precision: expected fp32 or bf16 but got 'fp16'*"])
