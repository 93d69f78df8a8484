"""robtest.distributed: one property sharded over torchrun ranks (gloo, 2 CPU processes) gives the numbers, the
summary and the report of one process; a rank that raises fails the run, named, without a hang.

Each launch of ``python -m torch.distributed.run`` costs seconds, so the projects are tiny and few."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from robtest import distributed
from robtest.errors import DistributedError

CONFTEST = textwrap.dedent(
    """
    import os, pytest, torch

    def _model():
        g = torch.Generator().manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        with torch.no_grad():
            m[1].weight.copy_(torch.randn(3, 16, generator=g))
            m[1].bias.zero_()
        return m.eval()

    class OneRankBreaks(torch.nn.Module):
        # ROBTEST_FAIL_RANK=k: the model raises on rank k only (a bad GPU, a missing file on one node...)
        def __init__(self):
            super().__init__()
            self.inner = _model()

        def forward(self, x):
            if os.environ.get("RANK") == os.environ.get("ROBTEST_FAIL_RANK", "-"):
                raise RuntimeError("broken on this rank")
            if os.environ.get("RANK") == os.environ.get("ROBTEST_HANG_RANK", "-"):
                import time
                time.sleep(120)  # a rank that hangs (a stuck GPU, a dead file system)
            if not isinstance(x, torch.fx.Proxy):  # certified_floor traces the model once (torch.fx)
                ROWS[0] += x.shape[0]
            return self.inner(x)

    ROWS = [0]  # rows this process ran through the model: each rank runs its share

    def pytest_sessionfinish(session):
        with open(f"rows-{os.environ.get('RANK', 'one')}.txt", "w") as f:
            f.write(str(ROWS[0]))

    @pytest.fixture(scope="session")
    def robust_model():
        return OneRankBreaks()

    @pytest.fixture(scope="session")
    def robust_data():
        x = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            return x, _model()(x).argmax(1)
    """
)

# Sharded (accuracy_floor: sequential and not, the in-body accuracy) and replicated properties.
TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=3)
    def test_sequential_floor():
        pass

    @pytest.mark.accuracy_floor(attack="auto", eps=0.05, floor=0.2, steps=5, targets=2, queries=20,
                                sequential=False)
    def test_auto_floor():
        pass

    def test_in_body(robust):
        robust.accuracy(attack="square", eps=0.1, queries=30)

    @pytest.mark.confidence_ceiling(ceiling=0.99, source="uniform", samples=100)
    def test_noise():
        pass

    @pytest.mark.min_perturbation(floor=0.01, samples=40)
    def test_min_perturbation():
        pass

    @pytest.mark.lipschitz(max=100.0, samples=40)
    def test_lipschitz():
        pass

    @pytest.mark.lipschitz(max=100.0, estimate="sensitivity", samples=40)
    def test_sensitivity():
        pass

    @pytest.mark.offset_invariance(max_drop=0.9, grid=5)
    def test_offset():
        pass

    @pytest.mark.power_law(exponent=(0.1, 5.0), attack="pgd", steps=3, eps=(0.02, 0.3), points=4, max_error=0.9)
    def test_power_law():
        pass

    @pytest.mark.confidence_ceiling(ceiling=1.0, source="fooling", steps=3, samples=50)
    def test_fooling():
        pass

    @pytest.mark.certified_floor(eps=0.02, floor=0.3, attack=None, sequential=False)  # the bounds alone
    def test_certified():
        pass
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_gate=TESTS)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("ROBTEST_FAIL_RANK", raising=False)
    monkeypatch.delenv("ROBTEST_HANG_RANK", raising=False)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    # the children import this checkout of robtest, wherever pytest runs from
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    return pytester


def _torchrun(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                 "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--robust", *args, timeout=1800)


def _records(p: pytest.Pytester, name: str) -> list[dict]:
    return json.loads((p.path / name).read_text(encoding="utf-8"))["records"]


RANDOMISED = textwrap.dedent(
    """
    import pytest, torch
    from conftest import _model

    class Noisy(torch.nn.Module):  # dropout at test time: a randomised model, attacked through EOT
        def __init__(self):
            super().__init__()
            self.inner = _model()

        def forward(self, x):
            return self.inner(torch.nn.functional.dropout(x, 0.3, training=True))

    @pytest.fixture(scope="module")
    def robust_model():
        return Noisy()

    # 3 steps through EOT trip the weak-attack checks too: allowed, the test compares numbers, not verdicts
    @pytest.mark.accuracy_floor(attack="pgd", eps=0.1, floor=0.0, steps=3, sequential=False,
                                allow=["randomized", "eps_not_monotone", "incomplete_optimization",
                                       "gradient_free_wins"])
    def test_randomised_model():
        pass
    """
)


def test_two_ranks_give_the_report_of_one_process(project: pytest.Pytester):
    # a randomised model too: its own draws come from torch's global RNG, seeded per batch, and every rank
    # evaluates the batches one process would
    project.makepyfile(test_random=RANDOMISED)
    one = project.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--robust",
                      "--robust-report=one.json", "--robust-batch-size=16", timeout=1800)
    # batches of 16: ranks take whole batches (those of one process), so 200 samples make 13 to share
    two = _torchrun(project, "--robust-report=two.json", "--robust-batch-size=16")
    for result in (one, two):  # the sequential floor fails by design, on every rank alike
        assert result.ret == 1
        result.stdout.fnmatch_lines(["*1 failed, 11 passed*"])
    a, b = _records(project, "one.json"), _records(project, "two.json")
    assert [r["id"] for r in a] == [r["id"] for r in b] and len(a) == 12
    noisy = next(r for r in b if "test_randomised_model" in r["id"])
    assert "with EOT" in noisy["measurement"]["context"]
    assert a == b  # every property: values, intervals, n, per-sample values and outcomes, fingerprints, diagnostics
    # ... and each rank computed its share only: every property is sharded
    one_rows, rank0, rank1 = (int((project.path / f"rows-{r}.txt").read_text()) for r in ("one", "0", "1"))
    assert rank0 + rank1 >= one_rows and max(rank0, rank1) < 0.7 * one_rows, (one_rows, rank0, rank1)
    floor = next(r for r in b if r["id"].endswith("test_sequential_floor::accuracy_floor"))
    assert floor["measurement"]["n"] == 64 and floor["measurement"]["details"]["stopped_early"]
    assert str(two.stdout).count("robustness summary") == 1  # rank 0 alone prints it
    two.stdout.fnmatch_lines(["*robtest: rank 0 of 2 (torchrun): each property's batches of 16 are shared out whole "
                              "over the ranks (at least 32 samples keep every rank busy)*"])
    assert not any("robtest: rank 1 failed" in line for line in two.outlines)  # nothing failed elsewhere


def test_a_baseline_saved_by_one_process_holds_on_two_ranks(project: pytest.Pytester):
    """The release gate at scale: a baseline written by one process, compared on two ranks: every property
    pairs with it sample for sample (0 lost, 0 gained), none regressed."""
    one = project.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--robust",
                      "--robust-batch-size=16", "--robust-save-baseline=base.json", timeout=1800)
    one.stdout.fnmatch_lines(["*1 failed, 10 passed*"])  # the sequential floor fails by design
    two = _torchrun(project, "--robust-batch-size=16", "--robust-baseline=base.json", "--robust-report=two.json")
    two.stdout.fnmatch_lines(["*1 failed, 10 passed*"])
    records = _records(project, "two.json")
    assert len(records) == 11 and all(r["baseline"]["status"] == "ok" for r in records), records
    paired = [r["baseline"] for r in records if r["baseline"].get("method") == "mcnemar"]
    assert len(paired) == 4 and all(b["lost"] == b["gained"] == 0 for b in paired)


def test_a_rank_that_raises_fails_the_run_and_is_named(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROBTEST_FAIL_RANK", "1")
    # a plain test that uses the model: it fails on rank 1 only
    project.makepyfile(test_plain="def test_uses_the_model(robust_model):\n"
                                  "    import torch\n    robust_model(torch.zeros(1, 1, 4, 4))\n")
    result = _torchrun(project, "--robust-report=two.json")
    assert result.ret != 0
    # Every property is sharded: rank 0 fails each of them with the name of the rank that raised (no hang:
    # every exchange carries an ok flag), whichever step of the evaluation it was in.
    for where in ("evaluate_accuracy", "non_example_confidence", "offset_drop", "error_curve", "local_lipschitz",
                  "loss_sensitivity", "minimal_perturbation"):
        result.stdout.fnmatch_lines([f"*DistributedError: {where}: rank 1 raised RuntimeError: broken on this rank "
                                     "(this is rank 0 of 2*"])
    result.stdout.fnmatch_lines(["*11 failed, 1 passed*"])
    # the ranks stayed in step: no test found them out of step, and rank 0 names what failed on rank 1 only
    assert "out of step" not in str(result.stdout)
    result.stdout.fnmatch_lines(["*robtest: rank 1 failed 1 test(s) that passed here: "
                                 "test_plain.py::test_uses_the_model*"])
    assert _records(project, "two.json") == []  # nothing was measured


def test_ranks_out_of_step_are_caught_instead_of_combined(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """A rank that fails between two exchanges (here: its data fixture raises on rank 1 only, before any
    exchange) would pair its next exchange with another test's on the other rank: caught, never combined."""
    project.makeconftest(CONFTEST + textwrap.dedent(
        """
        @pytest.fixture
        def shape_on_rank_1(robust):
            if os.environ.get("RANK") == "1":
                raise RuntimeError("no data here")

        """))
    project.makepyfile(test_gate=textwrap.dedent(
        """
        import pytest

        def test_first(robust, shape_on_rank_1):
            robust.offset_invariance(max_drop=0.9, grid=3)

        def test_second(robust):
            robust.offset_invariance(max_drop=0.9, grid=3)
        """))
    result = _torchrun(project)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*DistributedError: offset_drop: the ranks are out of step (rank 0 at exchange 1 "
                                 "(offset_drop, test_gate.py::test_first (call)); rank 1 at exchange 1 "
                                 "(offset_drop, test_gate.py::test_second (call)))*"])


def test_a_rank_that_hangs_times_out_instead_of_hanging(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROBTEST_HANG_RANK", "1")
    monkeypatch.setenv("ROBTEST_DIST_TIMEOUT", "10")
    result = _torchrun(project, "test_gate.py::test_auto_floor", "test_gate.py::test_in_body")
    assert result.ret != 0
    result.stdout.fnmatch_lines([
        "*DistributedError: rank 0: an exchange with the other ranks failed (*); another rank died, hung or ran "
        "past ROBTEST_DIST_TIMEOUT=10s*",
        "*DistributedError: rank 0: not evaluating, an earlier exchange failed*",  # the next test: at once
    ])
    result.stdout.fnmatch_lines(["*robtest: rank 0 could not hear from the other ranks*"])


def test_xdist_workers_under_torchrun_are_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    pytester.makepyfile("def test_x():\n    pass\n")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    result = pytester.runpytest("--robust", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robust under torchrun (WORLD_SIZE=2): expected one pytest process per rank but "
                                 "got pytest-xdist workers (-n 2); drop -n*"])


def test_one_process_is_rank_0_of_1_and_shares_everything(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (distributed.world(), distributed.rank(), distributed.is_main(), distributed.active()) == (1, 0, True, False)
    assert distributed.share_positions(5, batch_size=2).tolist() == [0, 1, 2, 3, 4]
    assert distributed.exchange({"a": 1}) == [{"a": 1}]
    with pytest.raises(ValueError, match="mine"):
        distributed.exchange(None, error=ValueError("mine"))
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    # whole batches, round-robin: batches [0,1] [2,3] [4,5] [6,7] -> rank 2 takes the third
    assert distributed.share_positions(8, batch_size=2).tolist() == [4, 5]
    assert distributed.share_positions(14, batch_size=2).tolist() == [4, 5, 10, 11]


def test_batch_shares_merge_back_into_the_visit_order(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    ids = list(range(11))
    parts = [[ids[p] for p in distributed.share_positions(11, 2, r).tolist()] for r in range(3)]
    assert parts == [[0, 1, 6, 7], [2, 3, 8, 9], [4, 5, 10]]
    assert distributed.merge(parts, 11, 2) == ids
    assert sorted(sum((distributed.share_positions(5, 8, r).tolist() for r in range(3)), [])) == list(range(5))
    # looks at 4 and 11: segments of 4 (batches of 2, 2) and 7 (2, 2, 2, 1); of 3 ranks, rank 0 takes the first
    # batch of each and the fourth of the second: 2 + 2 + 1
    monkeypatch.setenv("RANK", "0")
    assert distributed.share_size([4, 11], 2) == 5
    assert issubclass(DistributedError, RuntimeError)
