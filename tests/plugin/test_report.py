"""--robust-report: the path checked at startup, the versioned JSON schema, deterministic order under xdist."""

from __future__ import annotations

import json
import textwrap

import pytest

TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.9)
    @pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=5)
    def test_two_floors():
        pass

    def test_in_body(robust):
        robust.accuracy(attack="fgsm", eps=0.05)

    @pytest.mark.parametrize("eps", [0.01, 0.02, 0.05, 0.1])
    def test_many(robust, eps):
        robust.offset_invariance(max_drop=0.9, grid=3)
    """
)


@pytest.mark.parametrize("flag", ["--robust-report", "--robust-save-baseline"])
def test_missing_folder_is_a_usage_error_at_startup(project: pytest.Pytester, flag: str):
    project.makepyfile(TESTS)
    result = project.runpytest("--robust", f"{flag}=nodir/out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{flag}: the folder 'nodir' (for 'nodir/out.json') does not exist; create it "
                                 "or choose another path*"])
    assert "FileNotFoundError" not in result.stdout.str() + result.stderr.str()
    assert "collected" not in result.stdout.str()  # nothing ran


def test_schema_run_metadata_and_records(project: pytest.Pytester):
    project.makepyfile(test_r=TESTS)
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=out.json", "--robust-seed=2")
    result.assert_outcomes(passed=5, failed=1)
    report = json.loads((project.path / "out.json").read_text(encoding="utf-8"))
    assert report["schema"] == "robtest-report/1"
    run = report["run"]
    assert {"robtest", "torch", "python", "device", "devices", "seed", "rule", "confidence", "samples", "batch_size",
            "data", "git_commit", "started", "duration_s", "model_fingerprints"} <= set(run)
    assert run["seed"] == 2 and run["rule"] == "point" and run["confidence"] == 0.95 and run["devices"] == ["cpu"]
    assert run["robtest"] and run["torch"] and run["duration_s"] > 0 and len(run["model_fingerprints"]) == 1
    records = report["records"]
    assert [r["id"] for r in records] == [
        "test_r.py::test_two_floors::accuracy_floor", "test_r.py::test_two_floors::accuracy_floor#2",
        "test_r.py::test_in_body::accuracy",
        *(f"test_r.py::test_many[{e}]::offset_invariance" for e in ("0.01", "0.02", "0.05", "0.1"))]
    clean, pgd, body = records[:3]
    # markers are written top to bottom
    assert clean["threshold"] == 0.9 and clean["comparison"] == ">=" and clean["threshold_text"] == ">= 0.9"
    assert clean["verdict"] == "pass" and pgd["verdict"] == "FAIL" and pgd["outcome"] == "failed"
    assert pgd["settings"] == {"eps": 0.3, "attack": "pgd", "steps": 5} and pgd["source"] == "marker"
    assert body["threshold"] is None and body["verdict"] == "no threshold" and body["source"] == "call"
    m = pgd["measurement"]
    assert {"value", "low", "high", "n", "confidence", "context", "details", "diagnostics", "suspect"} <= set(m)
    assert len(m["details"]["outcomes"]) == m["n"] == 60 and isinstance(m["diagnostics"], list)
    assert [r["order"] for r in records] == sorted(r["order"] for r in records)
    result.stdout.fnmatch_lines(["*test_in_body*accuracy*(no threshold)*test passed*"])


def test_serial_and_xdist_give_the_same_report(project: pytest.Pytester):
    project.makepyfile(test_r=TESTS)
    project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "--robust-report=serial.json")
    project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "-n", "2", "--robust-report=xdist.json")

    def numbers(name: str) -> list[tuple]:
        recs = json.loads((project.path / name).read_text(encoding="utf-8"))["records"]
        return [(r["id"], r["measurement"]["value"], r["measurement"]["low"], r["measurement"]["high"],
                 r["measurement"]["n"], r["verdict"], r["measurement"]["details"].get("outcomes")) for r in recs]

    serial = numbers("serial.json")
    assert len(serial) == 7 and numbers("xdist.json") == serial


def test_an_unasserted_check_that_fails_says_so(project: pytest.Pytester):
    project.makepyfile(
        """
        def test_not_asserted(robust):
            robust.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=5)
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_not_asserted*accuracy_floor*>= 0.99*FAIL (not asserted)"])


def test_header_line(project: pytest.Pytester):
    project.makepyfile("def test_a(robust):\n    robust.accuracy()\n")
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-device=cpu", "--robust-seed=3")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["robtest: rule point, confidence 0.95, seed 3, device cpu, data digits"])


def test_a_shared_fixture_records_once_under_its_own_id(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def shared(robust):
            return robust.accuracy(attack="fgsm", eps=0.05)

        def test_one(shared):
            assert shared.n == 60

        def test_two(shared):
            assert shared.n == 60

        def test_own(robust):
            robust.accuracy(attack=None)
        """
    )
    for args in ((), ("-n", "2")):
        result = project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "--robust-report=r.json", *args)
        result.assert_outcomes(passed=3)
        records = json.loads((project.path / "r.json").read_text(encoding="utf-8"))["records"]
        name = "test_a_shared_fixture_records_once_under_its_own_id.py"
        assert [r["id"] for r in records] == [f"{name}::shared::accuracy", f"{name}::test_own::accuracy"]
        assert records[0]["fixture"] == f"{name}::shared"
        assert records[0]["test"].startswith(f"{name}::shared (fixture, first used by {name}::test_")


def test_a_shared_fixture_record_does_not_number_the_tests_own(project: pytest.Pytester):
    # test_first computes the module's shared fixture (its record goes in test_first's report, under the
    # fixture's id), then measures the same property itself: that is its first accuracy record, no "#2", so
    # its id does not depend on whether it is the test that happens to compute the fixture.
    project.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def shared(robust):
            return robust.accuracy(attack=None)

        def test_first(shared, robust):
            robust.accuracy(attack=None)

        def test_second(shared, robust):
            robust.accuracy(attack=None)
            robust.accuracy(attack=None)
        """
    )
    result = project.runpytest("--robust", "-p", "no:cacheprovider", "--robust-device=cpu", "--robust-report=r.json")
    result.assert_outcomes(passed=2)
    records = json.loads((project.path / "r.json").read_text(encoding="utf-8"))["records"]
    name = "test_a_shared_fixture_record_does_not_number_the_tests_own.py"
    assert sorted(r["id"] for r in records) == sorted([
        f"{name}::shared::accuracy", f"{name}::test_first::accuracy", f"{name}::test_second::accuracy",
        f"{name}::test_second::accuracy#2"])

