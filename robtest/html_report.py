"""A self-contained HTML view of a robtest report: the run, the summary table and the plots a person would
rather look at than read.

``pytest --robust --robust-html robtest.html`` writes it at the end of the run (beside or instead of
``--robust-report``); ``python -m robtest.html_report report.json robtest.html`` renders a saved JSON report.
The page has no external resources: styles inline, plots inline SVG, images as data URIs, so it can be
attached to a CI run or mailed as one file.

Each property's plot is the one its entry in :data:`robtest.property_table.PROPERTIES` names; any other record
(a measurement made in a test body, a suite's claim) gets every plot whose data its ``details`` hold:

- ``eps`` / ``error`` / ``A`` (:func:`robtest.properties.power_law_exponent`): adversarial error against ε on
  log–log axes, each point with its Clopper–Pearson interval, the fitted power law ``A·ε^B`` and the band
  of exponents in its interval;
- ``grid`` / ``grid_accuracy`` (:func:`robtest.properties.offset_drop`): accuracy against the constant (DC)
  offset, the worst offset marked;
- ``examples`` (:func:`robtest.properties.non_example_confidence`): the most confident fooling images or noise
  inputs, each with the class it is judged by and the confidence;
- ``ray`` (:func:`robtest.properties.logit_linearity`): every logit along the FGSM ray of one input;
- ``artifacts`` (fuzzing): the original, perturbed and difference images saved for the smallest failure;
- a baseline comparison (``--robust-baseline``): one chart of every compared value against the baseline's.

Plots need matplotlib (``pip install "robtest[report]"``); without it the page has everything else and says
where each plot would be. This module imports only the standard library and robtest's torch-free tables
(:mod:`robtest.property_table`, :mod:`robtest.summary`) at import time.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robtest.property_table import PROPERTIES
from robtest.summary import (
    BAD,
    HEADER,
    PASSING,
    PER_CLASS_BASELINE,
    PER_CLASS_HEADER,
    noted,
    per_class_rows,
    summary_rows,
)

__all__ = ["PLOTS", "render", "write_html", "figures_for", "main"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1200px;color:#1b1b1b;
padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:1.2em 0 .3em;font-family:ui-monospace,monospace;word-break:break-all}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{font-family:ui-monospace,monospace;
white-space:nowrap}.pass{color:#116611;font-weight:600}.bad{color:#b00020;font-weight:600}
.warn{color:#8a5a00;font-weight:600}.meta td:first-child{color:#555}.fig{display:inline-block;
margin:.3em 1em .3em 0;vertical-align:top}.fig svg{max-width:100%;height:auto}.note{color:#666;font-size:.85em}
table.sum{width:100%}table.cls{font-size:.8em}table.sum td:first-child{word-break:break-all;max-width:30em}
.diag{margin:.2em 0 .2em 1em;font-size:.85em}img.art{image-rendering:pixelated;max-width:360px;margin-right:.5em;
border:1px solid #ccc}
"""

def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


# -- plots (matplotlib, loaded only when a page is rendered) ---------------------------------------------------

def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    except ImportError:
        return None
    return Figure


def _svg(fig: Any) -> str:
    """A figure as inline SVG text: text kept as text, ids salted so the same report gives the same page."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "robtest"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # the writer's RDF block: not needed


def _figure(width: float = 4.6, height: float = 3.2, *, ncols: int = 1,
            width_ratios: tuple[float, ...] | None = None) -> Any:
    Figure = _matplotlib()
    fig = Figure(figsize=(width, height), dpi=100)
    if ncols == 1:
        return fig, fig.add_subplot(1, 1, 1)
    return fig, tuple(fig.subplots(1, ncols, gridspec_kw={"width_ratios": width_ratios} if width_ratios else {}))


def _cp(k: int, n: int, confidence: float) -> tuple[float, float]:
    from robtest.stats import clopper_pearson

    lo, hi = clopper_pearson(k, n, alpha=1 - confidence)
    return float(lo), float(hi)


def _plot_power_law(m: dict[str, Any]) -> str:
    d = m["details"]
    eps, err, n = list(d["eps"]), list(d["error"]), int(m["n"])
    conf = float(m.get("confidence") or 0.95)
    fig, ax = _figure()
    shown = [(e, r) for e, r in zip(eps, err, strict=True) if r > 0]
    used = [(e, r) for e, r in shown if d["eps_low"] <= e <= d["eps_high"]]
    for pts, style, label in ((used, "o", "fitted"), ([p for p in shown if p not in used], "x", "not fitted")):
        if not pts:
            continue
        es = [e for e, _ in pts]
        rs = [r for _, r in pts]
        ci = [_cp(round(r * n), n, conf) for r in rs]
        ax.errorbar(es, rs, yerr=[[r - lo for r, (lo, _) in zip(rs, ci, strict=True)],
                                  [hi - r for r, (_, hi) in zip(rs, ci, strict=True)]],
                    fmt=style, color="#1f5fa8" if style == "o" else "#999999", capsize=2, label=label, ms=4)
    lo_e, hi_e = d["eps_low"], d["eps_high"]
    grid = [lo_e * (hi_e / lo_e) ** (i / 40) for i in range(41)]
    b, a = float(m["value"]), float(d["A"])
    ax.plot(grid, [a * e ** b for e in grid], color="#c0392b", label=f"A·ε^B, B = {b:.3g}")
    # The band: power laws with the interval's exponents through the fit's centre.
    mid = math.sqrt(lo_e * hi_e)
    at_mid = a * mid ** b
    lows = [at_mid * (e / mid) ** float(m["low"]) for e in grid]
    highs = [at_mid * (e / mid) ** float(m["high"]) for e in grid]
    ax.fill_between(grid, [min(u, v) for u, v in zip(lows, highs, strict=True)],
                    [max(u, v) for u, v in zip(lows, highs, strict=True)], color="#c0392b", alpha=0.15,
                    label=f"B in [{float(m['low']):.3g}, {float(m['high']):.3g}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ε")
    ax.set_ylabel("adversarial error")
    ax.set_title(f"error against ε (n={n})", fontsize=10)
    ax.legend(fontsize=7)
    return _svg(fig)


def _plot_offset(m: dict[str, Any]) -> str:
    d = m["details"]
    fig, ax = _figure()
    ax.plot(d["grid"], d["grid_accuracy"], marker=".", color="#1f5fa8", label="accuracy")
    if "clean_accuracy" in d:
        ax.axhline(d["clean_accuracy"], color="#555555", ls="--", lw=1, label="no offset")
    if "worst_offset" in d:
        ax.axvline(d["worst_offset"], color="#c0392b", lw=1,
                   label=f"worst {d['worst_offset']:+.3f}: {d.get('worst_offset_accuracy', float('nan')):.3f}")
    ax.set_xlabel("constant offset added to every pixel")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"accuracy under a DC offset (n={m['n']})", fontsize=10)
    ax.legend(fontsize=7)
    return _svg(fig)


def _plot_bracket(m: dict[str, Any]) -> str:
    """The bracket: the certified accuracy (proven, a lower bound) and the attacked one (an upper bound), each with
    its interval, the gap between them shaded, and the floor."""
    d = m["details"]
    att = d["attacked"]
    fig, ax = _figure(4.6, 1.9)
    rows = ((m["value"], m["low"], m["high"], "#1e7b34"), (att["value"], att["low"], att["high"], "#1f5fa8"))
    for i, (v, lo, hi, colour) in enumerate(rows):
        ax.errorbar([v], [i], xerr=[[v - lo], [hi - v]], fmt="o", color=colour, capsize=3, ms=5)
        ax.annotate(f"{v:.3f}", (v, i), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.axvspan(min(m["value"], att["value"]), max(m["value"], att["value"]), color="#f0b400", alpha=0.2,
               label=f"gap {d.get('gap', 0.0):.3f}")
    if isinstance(d.get("floor"), (int, float)):
        ax.axvline(d["floor"], color="#c0392b", ls="--", lw=1, label=f"floor {d['floor']:g}")
    ax.set_yticks([0, 1], ["certified", "attacked"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("robust accuracy")
    ax.set_title(f"{d.get('method', '')} proof vs {att.get('attack', 'attack')} (n={m['n']})", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _svg(fig)


def _plot_per_class(m: dict[str, Any]) -> str:
    """Where robustness is lost: each class's accuracy with its interval, and the flip matrix as a heat map (row
    i: where the samples of true class i end up, as fractions of the class; the diagonal is the robust share)."""
    d = m["details"]
    classes = sorted(d["per_class"], key=int)
    flips = d["flips"]
    size = len(flips)
    fig, (ax, hm) = _figure(8.4, 3.3, ncols=2, width_ratios=(1, 1.25))
    acc = [d["per_class"][c]["accuracy"] for c in classes]
    lo = [a - d["per_class"][c]["low"] for a, c in zip(acc, classes, strict=True)]
    hi = [d["per_class"][c]["high"] - a for a, c in zip(acc, classes, strict=True)]
    ax.bar(range(len(classes)), acc, color="#1f5fa8", alpha=0.75)
    ax.errorbar(range(len(classes)), acc, yerr=[lo, hi], fmt="none", ecolor="#333", capsize=2, lw=0.8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("true class")
    ax.set_ylabel(m.get("name", "accuracy"))
    ax.set_title("per class (95% CI)" if m.get("confidence") == 0.95 else "per class", fontsize=10)
    frac = [[k / max(sum(row), 1) for k in row] for row in flips]
    im = hm.imshow(frac, cmap="magma_r", vmin=0, vmax=1)
    for i in range(size):
        for j in range(size):
            if flips[i][j]:
                hm.text(j, i, str(flips[i][j]), ha="center", va="center", fontsize=6,
                        color="white" if frac[i][j] > 0.55 else "black")
    hm.set_xticks(range(size), [str(j) for j in range(size)])
    hm.set_yticks(range(size), [str(i) for i in range(size)])
    hm.set_xlabel("class after the attack")
    hm.set_ylabel("true class")
    hm.set_title("flips: true → predicted (share of the class)", fontsize=10)
    fig.colorbar(im, ax=hm, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _svg(fig)


def _history(folder: str) -> list[tuple[str, dict[str, float]]]:
    """The saved runs of a ``--robust-history`` folder, oldest first: (label, value by record id)."""
    out = []
    for f in sorted(Path(folder).glob("[0-9][0-9][0-9][0-9]_*.json")):
        try:
            rep = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        commit = (rep.get("run", {}).get("git_commit") or "")[:7]
        values = {r["id"]: r["measurement"]["value"] for r in rep.get("records", [])
                  if r.get("id") and isinstance((r.get("measurement") or {}).get("value"), (int, float))}
        out.append((f"{f.name[:4]}" + (f"\n{commit}" if commit else ""), values))
    return out


def _plot_history(runs: list[tuple[str, dict[str, float]]], ids: list[str]) -> str:
    """Each record's value over the saved runs (the trend across releases): one small panel per record, each on
    its own scale (accuracies and Lipschitz constants do not share an axis)."""
    cols = min(4, len(ids))
    rows = math.ceil(len(ids) / cols)
    Figure = _matplotlib()
    fig = Figure(figsize=(2.6 * cols, 2.0 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    x = list(range(len(runs)))
    for k, rid in enumerate(ids):
        ax = axes[k // cols][k % cols]
        ax.plot(x, [values.get(rid, math.nan) for _, values in runs], marker="o", ms=3, lw=1.2, color="#1f5fa8")
        ax.set_xticks(x, [label for label, _ in runs], fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(rid.split("::", 1)[-1][:40], fontsize=7)
    for k in range(len(ids), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"history: {len(runs)} saved runs (number, commit)", fontsize=9)
    fig.tight_layout()
    return _svg(fig)


def _per_class_html(rec: dict[str, Any]) -> list[str]:
    """The per-class table and heat map of a record and its adversarial examples; [] when it has neither."""
    rows = per_class_rows(rec)
    details = (rec.get("measurement") or {}).get("details") or {}
    out = []
    if rows:
        head = PER_CLASS_HEADER + (PER_CLASS_BASELINE if len(rows[0]) > len(PER_CLASS_HEADER) else ())
        table = ('<table class="cls"><tr>' + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
                 + "".join("<tr>" + "".join(f'<td class="num">{_esc(c)}</td>' for c in row) + "</tr>"
                           for row in rows) + "</table>")
        out.append(f'<div class="fig">{table}</div>')
        if _matplotlib() is not None and isinstance(details.get("flips"), list) and len(details["flips"]) >= 2:
            out.append(f'<div class="fig">{_plot_per_class(rec["measurement"])}</div>')
    if _matplotlib() is not None and isinstance(details.get("adversarial"), dict):
        out.append(f'<div class="fig">{_plot_adversarial(rec["measurement"])}</div>')
    return out


def _plot_ray(m: dict[str, Any]) -> str:
    ray = m["details"]["ray"]
    eps, logits, label = ray["eps"], ray["logits"], ray.get("label")
    fig, ax = _figure()
    classes = len(logits[0]) if logits else 0
    for c in range(classes):
        mine = c == label
        ax.plot(eps, [row[c] for row in logits], lw=2.2 if mine else 1, color="#111111" if mine else None,
                label=f"class {c}" + (" (true)" if mine else ""))
    ax.axvline(0, color="#999999", lw=0.8)
    ax.set_xlabel("ε along sign(∇x loss)")
    ax.set_ylabel("logit")
    ax.set_title("logits along the FGSM ray (one input)", fontsize=10)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _svg(fig)


def _plot_examples(m: dict[str, Any]) -> str:
    ex = m["details"]["examples"]
    images, probs, classes = ex["images"], ex["confidence"], ex["class"]
    k = len(images)
    cols = min(k, 4)
    rows = -(-k // cols)
    Figure = _matplotlib()
    fig = Figure(figsize=(1.5 * cols, 1.7 * rows), dpi=100)
    for i, (img, p, c) in enumerate(zip(images, probs, classes, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        pixels = img[0] if len(img) == 1 else [[[ch[r][col] for ch in img] for col in range(len(img[0][0]))]
                                               for r in range(len(img[0]))]
        ax.imshow(pixels, cmap="gray" if len(img) == 1 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"class {c}: {p:.3f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("most confident non-examples", fontsize=9)
    return _svg(fig)


def _pixels(img: list) -> Any:
    """(C, H, W) nested lists as imshow wants them: (H, W) for one channel, (H, W, C) for more."""
    if len(img) == 1:
        return img[0]
    return [[[ch[r][c] for ch in img] for c in range(len(img[0][0]))] for r in range(len(img[0]))]


def _plot_adversarial(m: dict[str, Any]) -> str:
    """An accuracy's first adversarial examples: the clean image with its label and the model's class and
    confidence, the perturbation magnified to the full grey range (mid-grey is no change), the adversarial image
    with the class and confidence it gets."""
    ex = m["details"]["adversarial"]
    k = len(ex["clean"])
    Figure = _matplotlib()
    fig = Figure(figsize=(1.55 * k, 5.0), dpi=100)
    grey = len(ex["clean"][0]) == 1
    for i in range(k):
        clean, adv = ex["clean"][i], ex["adversarial"][i]
        diff = [[[a - c for a, c in zip(ra, rc, strict=True)] for ra, rc in zip(ca, cc, strict=True)]
                for ca, cc in zip(adv, clean, strict=True)]
        peak = max((abs(v) for ch in diff for row in ch for v in row), default=0.0) or 1.0
        shown = [[[0.5 + v / (2 * peak) for v in row] for row in ch] for ch in diff]
        panels = ((clean, f"label {ex['label'][i]}\n{ex['clean_class'][i]}: {ex['clean_confidence'][i]:.2f}"),
                  (shown, f"δ ×{0.5 / peak:.1f}"),
                  (adv, f"→ {ex['adversarial_class'][i]}: {ex['adversarial_confidence'][i]:.2f}"))
        for row, (img, title) in enumerate(panels):
            ax = fig.add_subplot(3, k, row * k + i + 1)
            ax.imshow(_pixels(img), cmap="gray" if grey else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("adversarial examples: clean, perturbation (magnified), adversarial", fontsize=9)
    fig.tight_layout()
    return _svg(fig)


def _plot_baseline(records: Sequence[dict[str, Any]]) -> str | None:
    rows = [r for r in records if isinstance(r.get("baseline"), dict) and "baseline_value" in r["baseline"]]
    if not rows:
        return None
    fig, ax = _figure(7.5, 0.45 * len(rows) + 1.2)
    for i, r in enumerate(rows):
        b = r["baseline"]
        bad = b.get("status") == "regression"
        ax.plot([b["baseline_value"], b["value"]], [i, i], color="#bbbbbb", lw=1, zorder=1)
        ax.scatter([b["baseline_value"]], [i], marker="|", s=120, color="#555555", zorder=2,
                   label="baseline" if i == 0 else None)
        ax.scatter([b["value"]], [i], marker="o", s=30, color="#b00020" if bad else "#116611", zorder=3,
                   label="this run" if i == 0 else None)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['property']} · {r['test'].rsplit('::', 1)[-1][:40]}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("value (red: a significant regression)")
    ax.set_title("this run against the baseline", fontsize=10)
    ax.legend(fontsize=7)
    return _svg(fig)


def _artifact_images(m: dict[str, Any]) -> str:
    art = m["details"]["artifacts"]
    imgs = []
    for name in ("original", "perturbed", "difference"):
        f = Path(art) / f"{name}.png"
        if f.is_file():
            data = base64.b64encode(f.read_bytes()).decode("ascii")
            imgs.append(f'<figure class="fig"><img class="art" alt="{name}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{name}</figcaption></figure>")
    return "".join(imgs)


@dataclass(frozen=True)
class Plot:
    """A plot of a measurement: the ``details`` it needs (the first a list or dict), how to draw it, and whether
    drawing it needs matplotlib."""

    keys: tuple[str, ...]
    draw: Callable[[dict[str, Any]], str]
    matplotlib: bool = True

    def fits(self, details: dict[str, Any]) -> bool:
        if not all(k in details for k in self.keys):
            return False
        first = details[self.keys[0]]
        if not self.matplotlib:  # images saved on disk
            return isinstance(first, str) and Path(first).is_dir()
        return isinstance(first, (list, dict))


#: The plots by name (a property's entry names its own), in the order a record's plots are shown.
PLOTS: dict[str, Plot] = {
    "power_law": Plot(("eps", "error", "A", "eps_low", "eps_high"), _plot_power_law),
    "offset": Plot(("grid", "grid_accuracy"), _plot_offset),
    "ray": Plot(("ray",), _plot_ray),
    "examples": Plot(("examples",), _plot_examples),
    "artifacts": Plot(("artifacts",), _artifact_images, matplotlib=False),
    "bracket": Plot(("attacked", "gap"), _plot_bracket),
}


def figures_for(rec: dict[str, Any]) -> list[str]:
    """The HTML (inline SVG or images) of the plots of a record's measurement; [] when it has none.

    A property's record gets the plot its table entry names; any other record every plot its details fit.
    Without matplotlib a plot is a note saying how to get it; fuzzing images need no matplotlib.
    """
    m = rec.get("measurement") or {}
    details = m.get("details") or {}
    entry = PROPERTIES.get(rec.get("property", ""))
    names = ([entry.plot] if entry.plot else []) if entry is not None else list(PLOTS)
    out = []
    for name in names:
        plot = PLOTS[name]
        if not plot.fits(details):
            continue
        if plot.matplotlib and _matplotlib() is None:
            out.append('<p class="note">plot not drawn: matplotlib is not installed '
                       '(pip install "robtest[report]")</p>')
            continue
        html_ = plot.draw(m)
        if html_:
            out.append(html_)
    return out


# -- the page ---------------------------------------------------------------------------------------------------

def _verdict_class(text: str) -> str:
    if text.startswith(BAD):
        return "bad"
    if "allowed" in text or "noted" in text:
        return "warn"
    return "pass" if text.startswith(PASSING) else ""


def render(report: dict[str, Any]) -> str:
    """The HTML page of a report (the dict ``--robust-report`` writes as JSON)."""
    run = report.get("run", {})
    records = report.get("records", [])
    rows = summary_rows(records)
    bad = sum(1 for row in rows if _verdict_class(row[-1]) == "bad")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>robtest report: {len(records)} records, {bad} not passing</title>",
           f"<style>{_CSS}</style></head><body>",
           "<h1>Robustness report</h1>",
           f'<p>{len(records)} records, <span class="{"bad" if bad else "pass"}">{bad} not passing</span>'
           f" · schema {_esc(report.get('schema', '?'))}</p>"]
    out.append('<table class="meta">')
    for k, v in run.items():  # every key robtest.reporter.run_metadata writes, in its order
        if v not in (None, [], ""):
            v = ", ".join(map(str, v)) if isinstance(v, list) else v
            out.append(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>")
    out.append("</table>")
    out.append('<h2>Summary</h2><table class="sum"><tr>' + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>")
    for row in rows:
        cls = _verdict_class(row[-1])
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row[:3])
                   + f'<td class="num">{_esc(row[3])}</td><td class="num">{_esc(row[4])}</td>'
                   + f'<td class="{cls}">{_esc(row[5])}</td></tr>')
    out.append("</table>")
    base = _plot_baseline(records) if _matplotlib() is not None else None
    compared = [r for r in records if isinstance(r.get("baseline"), dict)]
    if compared:
        out.append("<h2>Baseline comparison</h2>")
        if base:
            out.append(f'<div class="fig">{base}</div>')
        out.append("<ul>" + "".join(f"<li class=\"{'bad' if r['baseline'].get('status') == 'regression' else ''}\">"
                                    f"{_esc(r['test'])}: {_esc(r['baseline'].get('message', ''))}</li>"
                                    for r in compared) + "</ul>")
    folder = run.get("history")
    runs = _history(folder) if isinstance(folder, str) and Path(folder).is_dir() else []
    if len(runs) >= 2:
        ids = [r["id"] for r in records if r.get("id") and any(r["id"] in v for _, v in runs[:-1])][:12]
        if ids:
            out.append(f"<h2>History</h2><p class=\"note\">{len(runs)} saved runs in {_esc(folder)} (compare any two "
                       "with <code>python -m robtest.compare A B --dir FOLDER</code>)</p>")
            if _matplotlib() is not None:
                out.append(f'<div class="fig">{_plot_history(runs, ids)}</div>')
    details = []
    for r, row in zip(records, rows, strict=True):
        figs = figures_for(r)
        classes = _per_class_html(r)
        diags = (r.get("measurement") or {}).get("diagnostics") or []
        found = (((r.get("measurement") or {}).get("details") or {}).get("corrected") or {}).get("found")
        if not figs and not diags and not classes and not found:
            continue
        cls = _verdict_class(row[-1])
        part = [f"<h3>{_esc(r['test'])} · {_esc(r['property'])}</h3>",
                f'<p>{_esc(row[2])}: <span class="num">{_esc(row[3])}</span>, threshold {_esc(row[4])}, '
                f'<span class="{cls}">{_esc(row[5])}</span></p>']
        fix = ((r.get("measurement") or {}).get("details") or {}).get("corrected") or {}
        if fix.get("found"):
            m = r["measurement"]
            part.append(f'<p class="diag">attack alone {m["value"]:.3f} [{m["low"]:.3f}–{m["high"]:.3f}]; with the '
                        f"{fix['found']} counterexample(s) the indicator checks found among {fix['probed']} probed "
                        f"points{' (extrapolated to the unprobed ones)' if fix.get('extrapolated') else ''}: "
                        f'<span class="num">corrected {fix["value"]:.3f} [{fix["low"]:.3f}–{fix["high"]:.3f}]'
                        "</span> (what the verdict reads)</p>")
        for d in diags:
            tag = "allowed" if d.get("allowed") else "noted" if noted(d, r) else "SUSPECT"
            part.append(f'<p class="diag"><span class="{"bad" if tag == "SUSPECT" else "warn"}">{tag} '
                        f"{_esc(d['indicator'])}</span>: {_esc(d.get('message', ''))}</p>")
        part += [f'<div class="fig">{f}</div>' for f in figs]
        part += classes
        details.append("\n".join(part))
    if details:
        out.append("<h2>Details and plots</h2>")
        out += details
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """Render ``report`` and write it to ``path``; returns the path."""
    p = Path(path)
    p.write_text(render(report), encoding="utf-8")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robtest.html_report REPORT.json OUT.html``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m robtest.html_report REPORT.json OUT.html", file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"robtest: expected a JSON report written by --robust-report at {args[0]!r} but could not read it "
              f"({exc})", file=sys.stderr)
        return 2
    if not isinstance(report, dict) or not str(report.get("schema", "")).startswith("robtest-report/"):
        print(f"robtest: expected a robtest-report JSON at {args[0]!r} but got another file", file=sys.stderr)
        return 2
    write_html(report, args[1])
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
