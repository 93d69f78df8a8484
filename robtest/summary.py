"""The robustness summary's words and tables: what every report (terminal, Markdown, HTML, JUnit XML) says
about a record, defined once.

A record is the JSON-safe dict a property call publishes (see :mod:`robtest.reporter`); its row is
``(test, property, setting, measured [CI] n, threshold, verdict)``. The verdict words are :data:`PASSING` and
:data:`BAD` (and :data:`BASELINE_WORDS` for a baseline's findings). This module imports only the standard
library (and robtest's torch-free :mod:`robtest.diagnostics`).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, Protocol

__all__ = ["BAD", "BAD_BASELINE", "BASELINE_WORDS", "HEADER", "PASSING", "SUMMARY_WIDTH", "diagnostic_lines",
           "header_line", "junit_json", "markdown_summary", "near", "noted", "per_class_rows", "summary_rows",
           "table_lines", "verdict_text"]

#: Verdicts that pass (a row whose verdict starts with one is green).
PASSING = ("pass", "test passed")
#: Verdicts that do not pass (red in every report).
BAD = ("FAIL", "suspect", "regression", "no baseline", "mismatch", "test failed", "inconclusive")
#: What a baseline comparison's status adds to the verdict (:func:`robtest.baseline.compare`).
BASELINE_WORDS = {"regression": "regression", "missing": "no baseline", "mismatch": "mismatch"}
#: Baseline statuses that fail the test.
BAD_BASELINE = tuple(BASELINE_WORDS)


class RunOptions(Protocol):
    """What the summary's header reads of the run's options (:class:`robtest.options.Options`)."""

    rule: str
    confidence: float
    seed: int
    device: str
    data: str
    samples: int | None
    baseline: str | None


SUMMARY_WIDTH = 120
HEADER = ("test", "property", "setting", "measured [CI] n", "threshold", "verdict")
_MIN_SETTING = 24


def table_lines(rows: list[tuple[str, ...]], *, width: int = SUMMARY_WIDTH) -> list[list[str]]:
    r"""The summary table as lines, one list per row (the header first), within ``width`` columns where the
    test ids allow it.

    Nothing is cut: a row too wide wraps its setting within its column (never narrower than 24 characters),
    and every other cell stays on the row's first line, so a row still reads (and matches) as one line.

    >>> rows = [("t.py::test_a", "accuracy_floor", "under FGSM L∞ ε=0.1 (sequential: settled after 64 of 540 "
    ...          "samples)", "0.5 [0.4–0.6] n=9", ">= 0.3", "pass")]
    >>> for lines in table_lines(rows, width=100):
    ...     print(*lines, sep="\n")
    test          property        setting                          measured [CI] n    threshold  verdict
    t.py::test_a  accuracy_floor  under FGSM L∞ ε=0.1              0.5 [0.4–0.6] n=9  >= 0.3     pass
                                  (sequential: settled after 64
                                  of 540 samples)
    """
    table = [HEADER, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    fixed = sum(widths) - widths[2] + 2 * (len(HEADER) - 1)
    widths[2] = min(widths[2], max(_MIN_SETTING, width - fixed))
    out = []
    for r in table:
        setting = textwrap.wrap(r[2], widths[2]) or [""]
        first = [*r[:2], setting[0], *r[3:]]
        lines = ["  ".join(c.ljust(w) for c, w in zip(first, widths, strict=True)).rstrip()]
        pad = " " * (widths[0] + widths[1] + 4)
        lines += [(pad + part).rstrip() for part in setting[1:]]
        out.append(lines)
    return out


def header_line(s: RunOptions, device: str | None = None) -> str:
    """The run's settings in one line (the terminal's report header, the Markdown summary's first line)."""
    return (f"robtest: rule {s.rule}, confidence {s.confidence:g}, seed {s.seed}, device {device or s.device}, "
            f"data {s.data}" + (f", samples {s.samples}" if s.samples else ""))


def markdown_summary(s: RunOptions, records: list[dict[str, Any]]) -> str:
    """The summary as Markdown for CI pages: the run's settings, one table row per record, baseline messages."""
    devices = ", ".join(sorted({r["device"] for r in records if r.get("device")})) or None
    bad = sum(1 for r in records if not verdict_text(r).startswith(PASSING))

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    run = header_line(s, devices).removeprefix("robtest: ")
    lines = ["## Robustness summary", "", run[0].upper() + run[1:]
             + (f"; baseline `{s.baseline}`" if s.baseline else "") + f"; {len(records)} records, {bad} not passing",
             "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in summary_rows(records):
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    notes = [r["baseline"]["message"] for r in records if r.get("baseline", {}).get("status") in BAD_BASELINE]
    if notes:
        lines += ["", *(f"- {cell(n)}" for n in notes)]
    for r in records:
        rows = per_class_rows(r)
        if not rows:
            continue
        head = PER_CLASS_HEADER + (PER_CLASS_BASELINE if len(rows[0]) > len(PER_CLASS_HEADER) else ())
        lines += ["", f"<details><summary>Per class: {cell(r['test'])} · {r['property']}</summary>", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                  *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows), "", "</details>"]
    return "\n".join(lines) + "\n"


PER_CLASS_HEADER = ("class", "n", "accuracy [CI]", "most often pushed into")
PER_CLASS_BASELINE = ("baseline", "lost / gained", "p (Holm)")


def per_class_rows(rec: dict[str, Any]) -> list[tuple[str, ...]]:
    """The per-class table of a record: each true class's accuracy with its interval and the wrong class its
    samples end up in most often (from the flip matrix), and with a baseline comparison the class's baseline
    accuracy, samples lost and gained, and the Holm-corrected p-value (``*`` where it regressed). [] for a record
    without per-class results (or with one class).

    >>> rec = {"measurement": {"details": {"per_class": {"0": {"n": 4, "accuracy": 0.5, "low": 0.15, "high": 0.85},
    ...        "1": {"n": 2, "accuracy": 1.0, "low": 0.34, "high": 1.0}}, "flips": [[2, 2], [0, 2]]}}}
    >>> per_class_rows(rec)
    [('0', '4', '0.500 [0.150–0.850]', '1 (2 of 4)'), ('1', '2', '1.000 [0.340–1.000]', '—')]
    """
    details = (rec.get("measurement") or {}).get("details") or {}
    classes, flips = details.get("per_class"), details.get("flips")
    if not isinstance(classes, dict) or len(classes) < 2 or not all(
            isinstance(v, dict) and {"n", "accuracy", "low", "high"} <= set(v) for v in classes.values()):
        return []  # none, one class, or another property's per-class numbers (confidences)
    base = {str(r["class"]): r for r in (rec.get("baseline") or {}).get("per_class") or []}
    rows = []
    for c, v in classes.items():
        pushed = "—"
        if isinstance(flips, list) and int(c) < len(flips):
            wrong = [(k, j) for j, k in enumerate(flips[int(c)]) if j != int(c) and k > 0]
            if wrong:
                k, j = max(wrong)
                pushed = f"{j} ({k} of {v['n']})"
        row: tuple[str, ...] = (c, str(v["n"]), f"{v['accuracy']:.3f} [{v['low']:.3f}–{v['high']:.3f}]", pushed)
        if base:
            b = base.get(c)
            row += (("—", "—", "—") if b is None else
                    (f"{b['baseline']:.3f}", f"{b['lost']} / {b['gained']}",
                     f"{b['p_holm']:.2g}" + (" *" if b["regressed"] else "")))
        rows.append(row)
    return rows


# per-sample lists and plot data
_BULKY = ("sample_ids", "outcomes", "per_sample", "examples", "ray", "labels", "predictions", "outcomes3",
          "adversarial")


def junit_json(rec: dict[str, Any]) -> str:
    """A record as compact JSON for JUnit XML properties, without the per-sample lists and plot data (in the report
    and the baseline)."""
    m = rec.get("measurement") or {}
    details = {k: v for k, v in m.get("details", {}).items() if k not in _BULKY}
    slim = {**rec, "measurement": {**m, "details": details}} if m else rec
    return json.dumps(slim, ensure_ascii=False, separators=(",", ":"), default=repr)


def near(value: float, limit: float) -> str:
    """``value`` with 3 decimals, or with enough significant digits (4 to 6) that it no longer reads as ``limit``.

    >>> near(0.11987, 0.12), near(0.5, 0.12), near(0.12, 0.12)
    ('0.1199', '0.500', '0.120')
    """
    text = f"{value:.3f}"
    if value == limit or text != f"{limit:.3f}":
        return text
    for digits in (4, 5, 6):
        text = f"{value:.{digits}g}"
        if text != f"{limit:.{digits}g}":
            break
    return text


def _limits(rec: dict[str, Any]) -> list[float]:
    t = rec.get("threshold")
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return [float(t)]
    if isinstance(t, list):
        return [float(v) for v in t if isinstance(v, (int, float))]
    return []


def _fmt_value(rec: dict[str, Any]) -> str:
    m = rec["measurement"]
    value = f"{m['value']:.3f}"
    for limit in _limits(rec):  # enough digits to see which side of the threshold the value lies
        if near(m["value"], limit) != value:
            value = near(m["value"], limit)
    ci = f"{m['low']:.3f}–{m['high']:.3f}"
    fix = m.get("details", {}).get("corrected") or {}
    tail = f", corrected {fix['value']:.3f} [{fix['low']:.3f}–{fix['high']:.3f}]" if fix.get("found") else ""
    att = m.get("details", {}).get("attacked")
    if isinstance(att, dict) and "value" in att:  # a bracket: the proven value, then the attack's beside it
        tail += (f"; attacked {att['value']:.3f} [{att['low']:.3f}–{att['high']:.3f}], "
                 f"gap {m['details'].get('gap', 0.0):.3f}")
    return f"{value} [{ci}] n={m['n']}{tail}"


BASELINE_WORDS = {"regression": "regression", "missing": "no baseline", "mismatch": "mismatch"}


def verdict_text(rec: dict[str, Any]) -> str:
    """The verdict cell: the record's verdict (a measurement's by the test's outcome), the baseline's finding,
    and the indicators allowed or noted."""
    allowed = [d["indicator"] for d in rec["measurement"].get("diagnostics", ()) if d["allowed"]]
    seen = [d["indicator"] for d in rec["measurement"].get("diagnostics", ()) if noted(d, rec)]
    verdict = rec["verdict"]
    passed = rec.get("outcome") == "passed"
    if verdict == "no threshold":
        verdict = "test passed" if passed else "test failed"
    elif verdict == "FAIL" and rec.get("source") == "call" and passed:
        verdict = "FAIL (not asserted)"  # the test made the check but did not assert on it
    base = rec.get("baseline", {}).get("status")
    if base in BASELINE_WORDS and rec["verdict"] != "suspect":
        word = BASELINE_WORDS[base]
        verdict = word if rec["verdict"] in ("pass", "no threshold") else f"{verdict}, {word}"
    tags = ([f"allowed: {', '.join(allowed)}"] if allowed else []) + ([f"noted: {', '.join(seen)}"] if seen else [])
    if rec.get("cached"):
        tags.append("cached")  # the measurement of an earlier run, unchanged model, data and settings
    return f"{verdict} ({'; '.join(tags)})" if tags else verdict


def noted(d: dict[str, Any], rec: dict[str, Any]) -> bool:
    """An indicator that fired but did not block: a counting one (its counterexamples moved the number, not the
    verdict), or any beside a bracketed verdict (a proof and real examples, which no indicator can move)."""
    return (not d["allowed"] and (d.get("kind") == "count" or bool(rec.get("bracket")))
            and rec.get("verdict") != "suspect")


def _threshold_text(rec: dict[str, Any]) -> str:
    if rec.get("threshold_text"):
        return str(rec["threshold_text"])
    t = rec.get("threshold")
    return t if isinstance(t, str) and t else "(no threshold)"  # suites' claims carry their threshold as text


def summary_rows(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row of :data:`HEADER` per record."""
    rows = []
    for r in records:
        m = r["measurement"]
        rows.append((r["test"], r["property"], m.get("context", ""), _fmt_value(r), _threshold_text(r),
                     verdict_text(r)))
    return rows


def diagnostic_lines(records: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """One line per indicator that fired: (text, whether the test allowed it)."""
    from robtest.diagnostics import evidence_text

    out = []
    for r in records:
        for d in r["measurement"].get("diagnostics", ()):
            ev = evidence_text(d["evidence"])
            tag = "allowed" if d["allowed"] else "noted" if noted(d, r) else "SUSPECT"
            out.append((f"  {tag} {r['test']} {r['property']}: {d['indicator']}" + (f" ({ev})" if ev else ""),
                        tag != "SUSPECT"))
    return out
