"""The release engineer's baseline workflow: --robust-update-baseline (rewrite what ran, keep the rest, drop
what a test that ran no longer produces), unused records reported, saved runs under --robust-history compared
with ``python -m robtest.compare``, the trend in the HTML report, the run-metadata hook, and the per-class view
(Markdown, HTML, and the baseline's per-class paired tests)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tests.plugin.test_baseline import CONFTEST

TWO = textwrap.dedent(
    """
    import pytest

    @pytest.mark.accuracy_floor(attack="fgsm", eps=0.1, floor=0.3)
    def test_fgsm():
        pass

    @pytest.mark.lipschitz(max=100.0, samples=40)
    def test_lipschitz():
        pass
    """
)


@pytest.fixture
def models(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_gate=TWO)
    monkeypatch.setenv("ROBTEST_MODEL", "strong")
    monkeypatch.delenv("ROBTEST_LABELS", raising=False)
    return pytester


def _run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest("--robust", "-p", "no:cacheprovider", *args)


def _records(p: pytest.Pytester, name: str) -> dict:
    return json.loads((p.path / name).read_text(encoding="utf-8"))["records"]


def test_update_rewrites_what_ran_keeps_the_rest_and_drops_the_unused(models: pytest.Pytester,
                                                                       monkeypatch: pytest.MonkeyPatch):
    first = _run(models, "--robust-update-baseline=base.json")  # created when missing
    first.stdout.fnmatch_lines(["robtest: baseline base.json updated: 0 record(s) rewritten, 2 added, 0 removed "
                                "(no longer produced: none), 0 kept (their tests did not run)"])
    base = _records(models, "base.json")
    assert sorted(base) == ["test_gate.py::test_fgsm::accuracy_floor", "test_gate.py::test_lipschitz::lipschitz"]
    # another model; only test_fgsm runs: its record is rewritten, test_lipschitz's kept as it was
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    second = _run(models, "--robust-update-baseline=base.json", "-k", "fgsm")
    second.stdout.fnmatch_lines(["*updated: 1 record(s) rewritten, 0 added, 0 removed (no longer produced: none), "
                                 "1 kept (their tests did not run)"])
    now = _records(models, "base.json")
    assert now["test_gate.py::test_lipschitz::lipschitz"] == base["test_gate.py::test_lipschitz::lipschitz"]
    fgsm = "test_gate.py::test_fgsm::accuracy_floor"
    assert now[fgsm]["value"] < base[fgsm]["value"] and now[fgsm]["model_fingerprint"] != base[fgsm][
        "model_fingerprint"]
    # test_lipschitz loses its marker: comparing reports its record as unused, updating removes it
    models.makepyfile(test_gate=TWO.replace('@pytest.mark.lipschitz(max=100.0, samples=40)\n', ''))
    compared = _run(models, "--robust-baseline=base.json")
    compared.stdout.fnmatch_lines(["robtest: 1 baseline record(s) that no test produced although their test ran: "
                                   "test_gate.py::test_lipschitz::lipschitz; --robust-update-baseline base.json "
                                   "removes them"])
    assert "no test produced" not in _run(models, "--robust-baseline=base.json", "-k", "fgsm").stdout.str()
    third = _run(models, "--robust-update-baseline=base.json")
    third.stdout.fnmatch_lines(["*1 removed (no longer produced: test_gate.py::test_lipschitz::lipschitz), 0 kept*"])
    assert list(_records(models, "base.json")) == [fgsm]


def test_update_and_save_together_and_a_bad_file_are_usage_errors(models: pytest.Pytester):
    both = _run(models, "--robust-update-baseline=a.json", "--robust-save-baseline=b.json")
    assert both.ret == pytest.ExitCode.USAGE_ERROR
    both.stderr.fnmatch_lines(["*--robust-update-baseline and --robust-save-baseline: expected one of them*"])
    (models.path / "bad.json").write_text("{}", encoding="utf-8")
    bad = _run(models, "--robust-update-baseline=bad.json")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--robust-update-baseline: the baseline file 'bad.json': expected schema*"])


def test_saved_runs_compare_and_trend(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    models.makeconftest(CONFTEST + textwrap.dedent(
        """
        def pytest_robtest_run_metadata(config, metadata):
            metadata["model_release"] = os.environ["ROBTEST_MODEL"]
        """))
    _run(models, "--robust-history=hist").stdout.fnmatch_lines(["robtest: run saved as hist/0001_*.json"])
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    second = _run(models, "--robust-history=hist", "--robust-html=out.html", "--robust-report=out.json")
    second.stdout.fnmatch_lines(["robtest: run saved as hist/0002_*.json"])
    saved = sorted((models.path / "hist").iterdir())
    assert [f.name[:5] for f in saved] == ["0001_", "0002_"]
    # the hook's key is in every written run
    assert json.loads(saved[0].read_text())["run"]["model_release"] == "strong"
    assert json.loads((models.path / "out.json").read_text())["run"]["model_release"] == "noisy"
    page = (models.path / "out.html").read_text(encoding="utf-8")
    assert "<h2>History</h2>" in page and "history: 2 saved runs" in page
    # any two runs, by number, by name or by file: the noisy model regressed on the accuracy floor
    cmp = models.run(sys.executable, "-m", "robtest.compare", "1", "2", "--dir", "hist")
    assert cmp.ret == 1, cmp.stdout.str()
    cmp.stdout.fnmatch_lines(["A: 0001_*", "B: 0002_*",
                              "regression     test_gate.py::test_fgsm::accuracy_floor  accuracy_floor: A 0.* → B 0.*"
                              "exact McNemar*", "2 records: 1 regressed, 1 ok, 0 on one side only, 0 not comparable"])
    same = models.run(sys.executable, "-m", "robtest.compare", str(saved[1]), "latest", "--dir", "hist")
    assert same.ret == 0 and "0 regressed, 2 ok" in same.stdout.str()
    bad = models.run(sys.executable, "-m", "robtest.compare", "7", "latest", "--dir", "hist")
    assert bad.ret == 2
    bad.stderr.fnmatch_lines(["robtest compare: no saved run '7' in 'hist'; saved: 0001_*, 0002_*"])


def test_a_baseline_file_compares_with_a_saved_run(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    _run(models, "--robust-save-baseline=base.json", "--robust-history=hist")
    cmp = models.run(sys.executable, "-m", "robtest.compare", "base.json", "latest", "--dir", "hist")
    assert cmp.ret == 0, cmp.stdout.str()
    cmp.stdout.fnmatch_lines(["ok             test_gate.py::test_fgsm::accuracy_floor*0 lost, 0 gained*"])


def test_per_class_view_and_comparison(models: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    models.makepyfile(test_gate=TWO.split("@pytest.mark.lipschitz")[0])
    _run(models, "--robust-save-baseline=base.json")
    monkeypatch.setenv("ROBTEST_MODEL", "noisy")
    result = _run(models, "--robust-baseline=base.json", "--robust-markdown=out.md", "--robust-report=out.json",
                  "--robust-html=out.html")
    rec = _records(models, "out.json")[0]
    rows = rec["baseline"]["per_class"]
    assert [r["class"] for r in rows] == list(range(10)) and sum(r["n"] for r in rows) == 540
    assert sum(r["lost"] for r in rows) == rec["baseline"]["lost"]
    assert all(r["p_holm"] >= r["p_value"] for r in rows)
    worse = [r for r in rows if r["regressed"]]
    if worse:  # named in the message
        result.stdout.fnmatch_lines(["*classes that lost robustness (Holm-corrected McNemar): *"])
    md = (models.path / "out.md").read_text(encoding="utf-8")
    assert "<details><summary>Per class: test_gate.py::test_fgsm · accuracy_floor</summary>" in md
    assert "| class | n | accuracy [CI] | most often pushed into | baseline | lost / gained | p (Holm) |" in md
    page = (models.path / "out.html").read_text(encoding="utf-8")
    assert "flips: true → predicted (share of the class)" in page and '<table class="cls">' in page
