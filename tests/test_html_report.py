"""robtest.html_report: plots from what records hold, the page without matplotlib, the command line."""

from __future__ import annotations

import json

import torch

from robtest import html_report
from robtest.properties import logit_linearity


def _record(prop: str, value: float, details: dict, **extra) -> dict:
    m = {"name": prop, "value": value, "low": value - 0.1, "high": value + 0.1, "n": 100, "confidence": 0.95,
         "context": "ctx", "details": details, "diagnostics": [], "suspect": False}
    return {"test": f"t.py::test_{prop}", "property": prop, "measurement": m, "threshold": 0.5, "comparison": ">=",
            "threshold_text": ">= 0.5", "verdict": "pass", "outcome": "passed", **extra}


def test_the_logit_ray_is_plotted_from_logit_linearity():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    m = logit_linearity(model, torch.rand(5, 3), torch.tensor([0, 1, 2, 3, 0]), points=11)
    ray = m.details["ray"]
    assert len(ray["eps"]) == 11 and len(ray["logits"]) == 11 and len(ray["logits"][0]) == 4
    figs = html_report.figures_for(_record("G7", m.value, {"ray": ray}))
    assert len(figs) == 1 and figs[0].startswith("<svg") and "logits along the FGSM ray" in figs[0]
    assert "class 0 (true)" in figs[0]


def test_baseline_chart_marks_regressions():
    ok = _record("accuracy_floor", 0.8, {}, baseline={"status": "ok", "value": 0.8, "baseline_value": 0.79,
                                                         "message": "no significant regression: ..."})
    bad = _record("lipschitz", 0.5, {}, baseline={"status": "regression", "value": 0.5, "baseline_value": 0.7,
                                                    "message": "regression of t.py::test_lipschitz: ..."})
    page = html_report.render({"schema": "robtest-report/1", "run": {}, "records": [ok, bad]})
    assert "this run against the baseline" in page and page.count("<svg") == 1
    assert '<li class="bad">t.py::test_lipschitz: regression of t.py::test_lipschitz: ...</li>' in page
    assert "<title>robtest report: 2 records, 1 not passing</title>" in page


def test_without_matplotlib_the_page_says_where_plots_would_be(monkeypatch):
    monkeypatch.setattr(html_report, "_matplotlib", lambda: None)
    rec = _record("offset_invariance", 0.1, {"grid": [-0.5, 0.0, 0.5], "grid_accuracy": [0.5, 0.9, 0.6]})
    page = html_report.render({"schema": "robtest-report/1", "run": {"seed": 3}, "records": [rec]})
    assert "<svg" not in page
    assert 'plot not drawn: matplotlib is not installed (pip install "robtest[report]")' in page
    assert "<td>seed</td><td>3</td>" in page


def test_the_same_report_gives_the_same_page():
    rec = _record("offset_invariance", 0.1, {"grid": [-0.5, 0.0, 0.5], "grid_accuracy": [0.5, 0.9, 0.6],
                                             "worst_offset": -0.5, "worst_offset_accuracy": 0.5})
    report = {"schema": "robtest-report/1", "run": {}, "records": [rec]}
    assert html_report.render(report) == html_report.render(report)


def test_command_line_renders_a_saved_report(tmp_path, capsys):
    rec = _record("accuracy", 0.7, {})
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"schema": "robtest-report/1", "run": {}, "records": [rec]}), encoding="utf-8")
    assert html_report.main([str(src), str(tmp_path / "r.html")]) == 0
    assert "t.py::test_accuracy" in (tmp_path / "r.html").read_text(encoding="utf-8")
    (tmp_path / "other.json").write_text("{}", encoding="utf-8")
    assert html_report.main([str(tmp_path / "other.json"), str(tmp_path / "x.html")]) == 2
    assert "expected a robtest-report JSON" in capsys.readouterr().err
    assert html_report.main([str(tmp_path / "missing.json"), str(tmp_path / "x.html")]) == 2
    assert "expected a JSON report written by --robust-report" in capsys.readouterr().err
    assert html_report.main([]) == 2


def test_an_inconclusive_verdict_counts_as_not_passing():
    ok = _record("accuracy_floor", 0.8, {})
    late = _record("accuracy_floor", 0.6, {}, verdict="inconclusive: the budget 10s ran out after 64 samples",
                   outcome="failed")
    late["test"] = "t.py::test_late"
    page = html_report.render({"schema": "robtest-report/1", "run": {}, "records": [ok, late]})
    assert "<title>robtest report: 2 records, 1 not passing</title>" in page
    assert '<td class="bad">inconclusive: the budget 10s ran out after 64 samples</td>' in page
    assert '<td class="pass">pass</td>' in page
