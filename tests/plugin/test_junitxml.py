"""--junitxml: each robtest record is one property whose value is JSON (not a Python repr)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest


def test_junit_properties_are_json(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.accuracy_floor(attack="fgsm", eps=0.05, floor=0.1)
        def test_a():
            pass
        """
    )
    project.runpytest("--robust", "-p", "no:cacheprovider", "--junitxml=out.xml").assert_outcomes(passed=1)
    props = ET.parse(project.path / "out.xml").getroot().findall(".//testcase/properties/property")
    assert [p.get("name") for p in props] == ["robtest"]
    rec = json.loads(props[0].get("value"))
    assert rec["id"] == "test_junit_properties_are_json.py::test_a::accuracy_floor"
    assert rec["threshold"] == 0.1 and rec["comparison"] == ">=" and rec["verdict"] == "pass"
    assert rec["measurement"]["n"] == 60 and "outcomes" not in rec["measurement"]["details"]


def test_junit_properties_under_xdist(project: pytest.Pytester):
    project.makepyfile("def test_a(robust):\n    robust.accuracy()\n\ndef test_b(robust):\n    robust.accuracy()\n")
    result = project.runpytest_subprocess("--robust", "-p", "no:cacheprovider", "-n", "2", "--junitxml=out.xml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*robustness summary*"])
    props = ET.parse(project.path / "out.xml").getroot().findall(".//testcase/properties/property")
    assert sorted(json.loads(p.get("value"))["id"].split("::")[1] for p in props) == ["test_a", "test_b"]
