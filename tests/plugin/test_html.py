"""--robust-html: a self-contained HTML report with the plots, written at the end; the path checked at startup."""

from __future__ import annotations

import base64
import json
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEIGHTS = Path(__file__).resolve().parents[2] / "fixtures" / "digits_softmax.safetensors"

CONFTEST = textwrap.dedent(
    f"""
    import pytest
    import robtest
    from robtest.zoo import softmax_regression

    @pytest.fixture(scope="session")
    def robust_model():
        return robtest.load_weights(softmax_regression(), {str(WEIGHTS)!r})
    """
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag):
        self._in_title = False


def test_html_report_holds_the_summary_and_a_plot_per_property(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.confidence_ceiling(ceiling=0.99, source="fooling", samples=32)
        @pytest.mark.offset_invariance(max_drop=0.9, grid=11)
        @pytest.mark.power_law(exponent=(0.1, 5.0), eps=(0.01, 0.3))
        def test_plots():
            pass

        def test_accuracy(robust):
            assert robust.accuracy(attack="fgsm", eps=0.05, samples=64) > 0.1
        """
    )
    result = pytester.runpytest("--robust", "-p", "no:cacheprovider", "--robust-html=out.html",
                                "--robust-report=out.json")
    result.assert_outcomes(passed=1, failed=1)  # fooling images reach confidence 1 on a softmax regression
    result.stdout.fnmatch_lines(["robtest: HTML report written to out.html"])
    page = (pytester.path / "out.html").read_text(encoding="utf-8")
    report = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    parser = _Tags()
    parser.feed(page)
    assert parser.title == "robtest report: 4 records, 1 not passing"
    # confidence examples, offset curve, power law, and the accuracy's per-class bars and flip heat map and its
    # first adversarial examples
    assert parser.tags.count("svg") == 5 and "flips: true → predicted (share of the class)" in page
    assert "adversarial examples: clean, perturbation (magnified), adversarial" in page
    assert page.count('<table class="cls">') == 1  # the accuracy's per-class table; the others have none
    for title in ("most confident non-examples", "accuracy under a DC offset (n=540)", "error against ε (n="):
        assert title in page
    assert not re.search(r"(src|href)=\"(https?:)?//|url\((?!#)", page)  # self-contained: no external resources
    # every record's numbers are in the summary table, as the terminal prints them
    for rec in report["records"]:
        assert f"{rec['measurement']['value']:.3f}" in page
    power = next(r for r in report["records"] if r["property"] == "power_law")
    assert f"B = {power['measurement']['value']:.3g}" in page
    shown = next(r for r in report["records"] if r["property"] == "confidence_ceiling")["measurement"]["details"]
    assert len(shown["examples"]["images"]) == 8 and shown["examples"]["confidence"] == sorted(
        shown["examples"]["confidence"], reverse=True)
    assert re.search(r"class \d: 1\.000", page)


def test_html_path_is_checked_at_startup(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest("--robust", "--robust-html=nodir/out.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robust-html: the folder 'nodir' (for 'nodir/out.html') does not exist*"])


def test_fuzzing_failure_images_are_embedded(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fuzz(strategy="offsets", max_examples=20)
        def test_fuzz():
            pass
        """
    )
    result = pytester.runpytest("--robust", "-p", "no:cacheprovider", "--robust-html=out.html",
                                "--robust-artifacts=art")
    result.assert_outcomes(failed=1)  # a DC offset of the box's size flips digits of a softmax regression
    page = (pytester.path / "out.html").read_text(encoding="utf-8")
    images = re.findall(r'alt="(original|perturbed|difference)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [name for name, _ in images] == ["original", "perturbed", "difference"]
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
