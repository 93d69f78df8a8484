"""--robust-save-baseline / --robust-baseline: a real drop caught, noise not flagged, mismatches named."""

from __future__ import annotations

import json
import textwrap

import pytest

# An MLP trained on the embedded digits ("strong"), and the same weights with Gaussian noise of one standard
# deviation per tensor ("noisy": FGSM ε=0.1 accuracy 0.531 -> 0.393 on the 540 test digits). ROBTEST_LABELS=shift
# relabels the data (another data set of the same size).
CONFTEST = textwrap.dedent(
    """
    import os, pytest, torch

    @pytest.fixture(scope="session")
    def robust_model():
        from robtest.data import digits_tensors
        from robtest.zoo import mlp, train_classifier

        x, y = digits_tensors("train")
        torch.manual_seed(0)  # the initial weights: the same model on every run
        model = train_classifier(mlp(x.shape[1:], 10), x, y, seed=0, epochs=20)
        if os.environ.get("ROBTEST_MODEL") == "noisy":
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn(p.shape, generator=g) * p.std())
        return model.eval()

    @pytest.fixture(scope="session")
    def robust_data():
        from robtest.data import digits_tensors

        x, y = digits_tensors("test")
        if os.environ.get("ROBTEST_LABELS") == "shift":
            y = (y + 1) % 10
        return x, y
    """
)

TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.accuracy_floor(attack="fgsm", eps=0.1, floor=0.3)
    def test_fgsm():
        pass

    def test_in_body(robust):
        robust.accuracy(attack="apgd", eps=0.05, steps=10)
    """
)


@pytest.fixture
def models(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_gate=TESTS)
    monkeypatch.setenv("ROBTEST_MODEL", "strong")
    monkeypatch.delenv("ROBTEST_LABELS", raising=False)
    return pytester


def _save(p: pytest.Pytester, *args: str) -> dict:
    result = p.runpytest("--robust", "-p", "no:cacheprovider", "--robust-save-baseline=base.json", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["robtest: baseline of 2 records written to base.json"])
    return json.loads((p.path / "base.json").read_text(encoding="utf-8"))


def _records(p: pytest.Pytester) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads((p.path / "out.json").read_text(encoding="utf-8"))["records"]}


def test_baseline_file_holds_outcomes_and_fingerprints(models: pytest.Pytester):
    base = _save(models)
    assert base["schema"] == "robtest-baseline/1" and base["robtest"]
    entry = base["records"]["test_gate.py::test_fgsm::accuracy_floor"]
    assert entry["settings"] == {"eps": 0.1, "attack": "fgsm"} and entry["threshold"] == 0.3
    # saving turns sequential stopping off: the baseline holds every sample's outcome
    assert len(entry["sample_ids"]) == len(entry["outcomes"]) == entry["n"] == 540
    assert sum(entry["outcomes"]) == round(entry["value"] * 540) and set(entry["outcomes"]) <= {0, 1}
    assert len(entry["model_fingerprint"]) == len(entry["data_fingerprint"]) == 64
    assert "test_gate.py::test_in_body::accuracy" in base["records"]


def test_unchanged_model_passes_against_its_own_baseline_with_another_seed(models: pytest.Pytester):
    base = _save(models)
    # another seed and a subset size: the comparison still evaluates exactly the baseline's samples
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                              "--robust-seed=3", "--robust-samples=100", "--robust-report=out.json")
    result.assert_outcomes(passed=2)
    records = _records(models)
    fgsm = records["test_gate.py::test_fgsm::accuracy_floor"]
    assert fgsm["measurement"]["details"]["sample_ids"] == base["records"][fgsm["id"]]["sample_ids"]
    assert fgsm["baseline"]["status"] == "ok" and fgsm["baseline"]["lost"] == fgsm["baseline"]["gained"] == 0
    # APGD's random starts differ with the seed: noise, not a drop
    pgd = records["test_gate.py::test_in_body::accuracy"]
    assert pgd["baseline"]["status"] == "ok" and pgd["baseline"]["p_value"] > 0.05
    assert pgd["measurement"]["n"] == 540


def test_real_drop_fails_as_a_regression(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    _save(models)
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                              "--robust-report=out.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*regression of test_gate.py::test_fgsm::accuracy_floor: accuracy 0.* now vs 0.* in the baseline on the "
        "same 540 samples: * lost, * gained (one-sided exact McNemar p=*, alpha 0.05)*",
        "*robustness summary*",
        "*test_fgsm*accuracy_floor*>= 0.3*regression*",
    ])
    b = _records(models)["test_gate.py::test_fgsm::accuracy_floor"]["baseline"]
    assert b["status"] == "regression" and b["method"] == "mcnemar"
    assert b["lost"] > b["gained"] and b["p_value"] < 0.05 and b["value"] < b["baseline_value"]


def test_tolerance_per_run_and_per_test(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    _save(models)
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                              "--robust-baseline-tolerance=0.3")
    result.assert_outcomes(passed=2)
    models.makepyfile(test_gate=TESTS.replace("floor=0.3)", "floor=0.3, tolerance=0.3)"))
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json")
    result.assert_outcomes(passed=1, failed=1)  # the marker's margin; the in-body accuracy has none
    result.stdout.fnmatch_lines(["*test_in_body*accuracy*regression*"])


def test_missing_baseline_file_is_a_usage_error(models: pytest.Pytester):
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=nothere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robust-baseline: the baseline file 'nothere.json' does not exist; write one "
                                 "with --robust-save-baseline*"])


def test_record_missing_from_the_baseline(models: pytest.Pytester):
    _save(models)
    models.makepyfile(test_gate=TESTS + "\n\n@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.5)\n"
                      "def test_new():\n    pass\n")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*no baseline for test_gate.py::test_new::accuracy_floor; rerun with "
                                 "--robust-save-baseline*", "*test_new*accuracy_floor*no baseline*"])


def test_other_settings_and_other_data_are_named(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    _save(models)
    models.makepyfile(test_gate=TESTS.replace("eps=0.1", "eps=0.2"))
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*baseline mismatch for test_gate.py::test_fgsm::accuracy_floor: the settings "
                                 "differ from the baseline's: eps 0.2 (baseline 0.1)*", "*test_fgsm*mismatch*"])
    models.makepyfile(test_gate=TESTS)
    monkeypatch.setenv("ROBTEST_LABELS", "shift")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*baseline mismatch for test_gate.py::test_fgsm::accuracy_floor: the data differ "
                                 "from the baseline's (data fingerprint of the ids and labels of the evaluated "
                                 "samples: * now, * in the baseline)*"])


def test_other_properties_compare_with_the_baseline_interval(models: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch):
    # The DC-offset drop: the noisy weights lose 0.256 of their accuracy to the worst offset, the trained ones
    # 0.507, above the noisy baseline's upper bound (0.314): a regression under the simpler interval rule.
    models.makepyfile(test_gate=textwrap.dedent(
        """
        import pytest

        @pytest.mark.offset_invariance(max_drop=1.0, grid=5)
        def test_offset():
            pass
        """))
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-save-baseline=base.json")
    result.assert_outcomes(passed=1)
    models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                     "--robust-report=out.json").assert_outcomes(passed=1)
    b = _records(models)["test_gate.py::test_offset::offset_invariance"]["baseline"]
    assert b["status"] == "ok" and b["method"] == "interval" and b["value"] == b["baseline_value"]
    monkeypatch.setenv("ROBTEST_MODEL", "strong")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                              "--robust-report=out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*regression of test_gate.py::test_offset::offset_invariance: accuracy drop 0.50* now "
                                 "vs 0.25* (CI 0.19*–0.31*) in the baseline; above the baseline's upper bound 0.31*"])
    b = _records(models)["test_gate.py::test_offset::offset_invariance"]["baseline"]
    assert b["status"] == "regression" and b["value"] > b["bound"][1]


def test_per_sample_means_are_compared_with_a_paired_test(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    # The loss sensitivity is a mean over the same seeded samples in both runs: the trained weights against their
    # own baseline pair every sample with no change; the noisy weights move the per-sample values up.
    models.makepyfile(test_gate=textwrap.dedent(
        """
        import pytest

        @pytest.mark.lipschitz(max=1000.0, estimate="sensitivity", samples=100)
        def test_sensitivity():
            pass
        """))
    monkeypatch.setenv("ROBTEST_MODEL", "strong")
    models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-save-baseline=base.json").assert_outcomes(passed=1)
    base = json.loads((models.path / "base.json").read_text(encoding="utf-8"))
    entry = base["records"]["test_gate.py::test_sensitivity::lipschitz"]
    assert len(entry["per_sample"]) == 100 and abs(sum(entry["per_sample"]) / 100 - entry["value"]) < 1e-6
    models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                     "--robust-report=out.json").assert_outcomes(passed=1)
    b = _records(models)["test_gate.py::test_sensitivity::lipschitz"]["baseline"]
    assert b["method"] == "paired t-test" and b["status"] == "ok"
    assert b["worse"] == 0 and b["mean_change"] == 0 and b["p_value"] == 1.0
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    result = models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                              "--robust-report=out.json")
    b = _records(models)["test_gate.py::test_sensitivity::lipschitz"]["baseline"]
    assert b["method"] == "paired t-test" and b["n"] == 100
    # the noisy weights' loss is far more sensitive (0.711 -> 1.943 here): 85 of the 100 samples rose
    assert b["status"] == "regression" and b["worse"] > 70 and b["mean_change"] > 0.5 and b["p_value"] < 1e-3
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*regression of test_gate.py::test_sensitivity::lipschitz: loss sensitivity * now vs "
                                 "* in the baseline on the same 100 samples: * rose, mean change +* (one-sided "
                                 "paired t-test p=*, alpha 0.05)*"])
    # a margin above the change lets it through
    models.runpytest("--robust", "-p", "no:cacheprovider", "--robust-baseline=base.json",
                     "--robust-baseline-tolerance=0.9").assert_outcomes(passed=1)
