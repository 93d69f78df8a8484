"""Baselines: a run's per-property results saved to a file, and a later run compared with them.

``pytest --robust --robust-save-baseline robtest-baseline.json`` writes one entry per property record (its
stable id, settings, threshold, the sample ids and per-sample outcomes of accuracies, the value and interval
of the other properties, model and data fingerprints); ``pytest --robust --robust-baseline
robtest-baseline.json`` evaluates each accuracy on exactly the baseline's samples and fails a test whose
property regressed significantly:

- accuracies: an exact one-sided McNemar test on the paired outcomes (:func:`mcnemar`);
- properties whose value is a mean of per-sample values (local Lipschitz, loss sensitivity, mean confidence
  on non-examples): a one-sided paired t-test on the same samples (:func:`paired_mean_test`), with the
  tolerance as a non-inferiority margin in the property's units;
- the others (ρ, exponents, offset drops, global bounds, max confidence): a simpler rule, the new point
  estimate must not be worse than the baseline's interval bound in the property's direction (by more than
  the tolerance).

This module imports only the standard library at import time (the plugin reads baselines at startup);
scipy loads when a McNemar test runs, torch when a model is fingerprinted.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from robtest.errors import BaselineError
from robtest.property_table import PROPERTIES

__all__ = ["BASELINE_SCHEMA", "REPORT_SCHEMA", "baseline_entry", "compare", "load_baseline",
           "mcnemar", "model_fingerprint", "paired_mean_test", "per_class_changes"]

REPORT_SCHEMA = "robtest-report/1"
BASELINE_SCHEMA = "robtest-baseline/1"

#: Which way is better for each comparison of the property table: "higher" (floors), "lower" (ceilings),
#: "inside" (a range).
_BETTER = {">=": "higher", "<=": "lower", "in": "inside"}


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read a baseline written by ``--robust-save-baseline``; raises :class:`BaselineError` saying what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise BaselineError(f"the baseline file {str(p)!r} does not exist; write one with --robust-save-baseline "
                            f"{p} (on the release to compare with)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"the baseline file {str(p)!r} is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BaselineError(f"the baseline file {str(p)!r}: expected schema {BASELINE_SCHEMA!r} but got {got!r}; "
                            "rewrite it with --robust-save-baseline")
    if not isinstance(data.get("records"), dict):
        raise BaselineError(f"the baseline file {str(p)!r} has no 'records' mapping; rewrite it with "
                            "--robust-save-baseline")
    return data


def model_fingerprint(model: Any) -> str | None:
    """sha256 of the model's state dict: every tensor's name and bytes, in key order (None for a plain callable)."""
    state = getattr(model, "state_dict", None)
    if state is None:
        return None
    import torch
    digest = hashlib.sha256()
    for key, value in state().items():
        digest.update(key.encode())
        if hasattr(value, "detach"):
            t = value.detach().cpu().contiguous().reshape(-1)
            digest.update(str(t.dtype).encode())
            digest.update(t.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def baseline_entry(rec: dict[str, Any]) -> dict[str, Any]:
    """What a baseline keeps of a report record: small, JSON, enough to pair a later run with it."""
    m = rec["measurement"]
    details = m.get("details", {})
    entry = {"id": rec["id"], "property": rec["property"], "settings": rec.get("settings", {}),
             "context": m.get("context", ""), "threshold": rec.get("threshold"),
             "comparison": rec.get("comparison"), "value": m["value"], "low": m["low"], "high": m["high"],
             "n": m["n"], "confidence": m.get("confidence"), "verdict": rec.get("verdict"),
             "model_fingerprint": rec.get("model_fingerprint"),
             "data_fingerprint": details.get("data_fingerprint") or rec.get("data_fingerprint")}
    if "outcomes" in details and "sample_ids" in details:
        entry["sample_ids"] = details["sample_ids"]
        entry["outcomes"] = details["outcomes"]
        if len(details.get("labels", ())) == len(details["sample_ids"]):  # for the per-class comparison
            entry["labels"] = details["labels"]
    if details.get("per_sample_statistic") == "mean" and "per_sample" in details:
        entry["per_sample"] = details["per_sample"]
    att = details.get("attacked")
    if isinstance(att, dict) and "value" in att:  # a bracket: the attack's upper bound beside the proof
        entry["attacked"] = {k: att[k] for k in ("value", "low", "high")}
        entry["gap"] = details.get("gap")
    return entry


def paired_mean_test(base: list[float], now: list[float], *, better: str, tolerance: float = 0.0
                     ) -> dict[str, Any]:
    """A one-sided paired t-test of "now is worse than the baseline by more than ``tolerance``" for a property
    whose value is the mean of per-sample values (Lipschitz and loss-sensitivity estimates, confidences).

    ``better`` is "higher" or "lower"; ``worse`` counts the samples that moved the wrong way, ``mean_change``
    is the mean of now − baseline. Identical values give p = 1.

    >>> r = paired_mean_test([0.1, 0.2, 0.3, 0.4] * 5, [0.2, 0.3, 0.4, 0.6] * 5, better="lower")
    >>> r["worse"], round(r["mean_change"], 3), r["p_value"] < 1e-6
    (20, 0.125, True)
    >>> paired_mean_test([0.1, 0.2], [0.1, 0.2], better="lower")["p_value"]
    1.0
    """
    if len(base) != len(now):
        raise ValueError(f"expected values of the same samples but got {len(base)} and {len(now)}")
    sign = 1.0 if better == "lower" else -1.0  # worse = a rise for a ceiling, a fall for a floor
    diffs = [sign * (b - a) for a, b in zip(base, now, strict=True)]
    worse = sum(1 for d in diffs if d > 0)
    mean_change = sum(b - a for a, b in zip(base, now, strict=True)) / max(1, len(base))
    shifted = [d - tolerance for d in diffs]
    if len(shifted) < 2 or max(shifted) == min(shifted):
        p = 1.0 if not shifted or shifted[0] <= 0 else 0.0
    else:
        from scipy.stats import ttest_1samp

        p = float(ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
    return {"worse": worse, "n": len(base), "mean_change": mean_change, "p_value": p}


def mcnemar(base: list[int], now: list[int], *, tolerance: float = 0.0) -> dict[str, Any]:
    """An exact one-sided McNemar test of "now is less robust than the baseline (by more than ``tolerance``)".

    ``base`` and ``now`` are per-sample outcomes (1: robust) of the same samples. ``lost`` counts samples
    robust in the baseline but not now, ``gained`` the reverse; ``p`` is P(X ≥ lost) for X ~ Binomial(lost +
    gained, π0). Without a tolerance π0 = ½ (the exact McNemar test); a tolerance δ (a non-inferiority margin,
    in accuracy) lets the accuracy drop by δ under the null: π0 = (1 + δ·n/m)/2 with m = lost + gained
    discordant pairs of n (the observed discordant rate plugged in), and p = 1 once δ·n ≥ m.

    >>> r = mcnemar([1] * 20 + [0] * 5, [0] * 12 + [1] * 8 + [1] * 5)
    >>> r["lost"], r["gained"], round(r["p_value"], 6)
    (12, 5, 0.071732)
    >>> mcnemar([1, 1, 0], [1, 1, 0])["p_value"]
    1.0
    """
    if len(base) != len(now):
        raise ValueError(f"expected outcomes of the same samples but got {len(base)} and {len(now)}")
    lost = sum(1 for b, c in zip(base, now, strict=True) if b and not c)
    gained = sum(1 for b, c in zip(base, now, strict=True) if c and not b)
    m, n = lost + gained, len(base)
    if m == 0 or lost == 0:
        p = 1.0
    else:
        pi0 = 0.5 * (1 + tolerance * n / m)
        if pi0 >= 1:
            p = 1.0
        else:
            from scipy.stats import binomtest

            p = float(binomtest(lost, m, pi0, alternative="greater").pvalue)
    return {"lost": lost, "gained": gained, "n": n, "p_value": p}


def per_class_changes(base: list[int], now: list[int], labels: list[int], *, alpha: float = 0.05
                      ) -> list[dict[str, Any]]:
    """Which classes lost robustness: per true class, the exact one-sided McNemar test of :func:`mcnemar` on that
    class's paired outcomes, with Holm's step-down correction over the classes (the family-wise error stays at
    most ``alpha`` however many classes there are). One row per class, in class order: ``n``, ``baseline`` and
    ``now`` accuracy, ``lost``, ``gained``, ``p_value``, ``p_holm`` (adjusted) and ``regressed`` (p_holm < alpha).

    >>> rows = per_class_changes([1] * 30 + [1] * 30, [0] * 20 + [1] * 10 + [1] * 30, [0] * 30 + [1] * 30)
    >>> [(r["class"], r["lost"], r["regressed"]) for r in rows]
    [(0, 20, True), (1, 0, False)]
    """
    if not len(base) == len(now) == len(labels):
        raise ValueError(f"expected outcomes and labels of the same samples but got {len(base)}, {len(now)} and "
                         f"{len(labels)}")
    rows = []
    for c in sorted(set(labels)):
        idx = [i for i, lab in enumerate(labels) if lab == c]
        b, n_ = [base[i] for i in idx], [now[i] for i in idx]
        test = mcnemar(b, n_)
        rows.append({"class": int(c), "n": len(idx), "baseline": sum(b) / len(idx), "now": sum(n_) / len(idx),
                     "lost": test["lost"], "gained": test["gained"], "p_value": test["p_value"]})
    # Holm: the k-th smallest p (k from 0) times (m - k), made monotone, capped at 1
    order = sorted(range(len(rows)), key=lambda i: rows[i]["p_value"])
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(rows) - k) * rows[i]["p_value"]))
        rows[i]["p_holm"] = running
    for r in rows:
        r["regressed"] = r["p_holm"] < alpha
    return rows


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and math.isfinite(v) else str(v)


def settings_difference(base: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """'eps 0.2 (baseline 0.1)' for every setting that differs."""
    out = []
    for key in sorted(set(base) | set(now)):
        if base.get(key) != now.get(key):
            out.append(f"{key} {now.get(key, '(unset)')!r} (baseline {base.get(key, '(unset)')!r})")
    return out


def check_pairing(entry: dict[str, Any], rec_id: str, settings: dict[str, Any]) -> str | None:
    """Why ``entry`` cannot be compared with a property evaluated with ``settings``; None when it can."""
    diff = settings_difference(entry.get("settings", {}), settings)
    if diff:
        return (f"baseline mismatch for {rec_id}: the settings differ from the baseline's: {'; '.join(diff)}; "
                "rerun with --robust-save-baseline to accept the new settings")
    return None


def _paired_text(name: str, value: float, base_value: float, test: dict[str, Any], finding: str, method: str,
                 alpha: float, tolerance: float) -> str:
    """The sentence of a paired comparison (McNemar or the paired t-test): both values, what moved, the p-value."""
    tol = f", tolerance {tolerance:g}" if tolerance else ""
    return (f"{name} {_fmt(value)} now vs {_fmt(base_value)} in the baseline on the same {test['n']} samples: "
            f"{finding} (one-sided {method} p={test['p_value']:.3g}, alpha {alpha:g}{tol})")


def compare(entry: dict[str, Any] | None, rec: dict[str, Any], *, rec_id: str, tolerance: float, alpha: float
            ) -> dict[str, Any]:
    """The baseline comparison of a record: ``status`` is ok, regression, mismatch, missing or not compared."""
    prop = rec["property"]
    out: dict[str, Any] = {"tolerance": tolerance, "alpha": alpha}
    spec = PROPERTIES.get(prop)
    if (spec is not None and spec.search) or rec.get("measurement") is None:
        return {**out, "status": "not compared", "message": "fuzzing results are not compared with baselines"}
    if entry is None:
        return {**out, "status": "missing",
                "message": f"no baseline for {rec_id}; rerun with --robust-save-baseline"}
    if entry.get("property") != prop:
        return {**out, "status": "mismatch", "message": f"baseline mismatch for {rec_id}: the baseline holds "
                f"{entry.get('property')!r}, this run measured {prop!r}"}
    problem = check_pairing(entry, rec_id, rec.get("settings", {}))
    if problem:
        return {**out, "status": "mismatch", "message": problem}
    m = rec["measurement"]
    details = m.get("details", {})
    data_fp = details.get("data_fingerprint") or rec.get("data_fingerprint")
    if entry.get("data_fingerprint") and data_fp and entry["data_fingerprint"] != data_fp:
        what = "ids and labels of the evaluated samples" if "outcomes" in details else "first batch"
        return {**out, "status": "mismatch", "message": f"baseline mismatch for {rec_id}: the data differ from "
                f"the baseline's (data fingerprint of the {what}: {data_fp[:12]} now, "
                f"{entry['data_fingerprint'][:12]} in the baseline)"}
    value, base_value = m["value"], entry["value"]
    out.update(baseline_value=base_value, value=value)
    if "outcomes" in entry and "outcomes" in details:
        if details.get("sample_ids") != entry.get("sample_ids"):
            return {**out, "status": "mismatch", "message": f"baseline mismatch for {rec_id}: this run evaluated "
                    f"other samples than the baseline's ({len(details.get('sample_ids', []))} vs "
                    f"{len(entry['sample_ids'])})"}
        test = mcnemar(entry["outcomes"], details["outcomes"], tolerance=tolerance)
        out.update(method="mcnemar", **test)
        regressed = test["p_value"] < alpha
        text = _paired_text(m.get("name", prop), value, base_value, test, f"{test['lost']} lost, {test['gained']} "
                            "gained", "exact McNemar", alpha, tolerance)
        labels = entry.get("labels")
        if labels is not None and labels == details.get("labels", labels):
            classes = per_class_changes(entry["outcomes"], details["outcomes"], labels, alpha=alpha)
            out["per_class"] = classes
            worse = [r for r in classes if r["regressed"]]
            if worse:  # which classes lost robustness (Holm-corrected over the classes)
                text += "; classes that lost robustness (Holm-corrected McNemar): " + ", ".join(
                    f"{r['class']} {r['baseline']:.2f} → {r['now']:.2f} ({r['lost']} lost, p={r['p_holm']:.2g})"
                    for r in worse)
    elif ("per_sample" in entry and details.get("per_sample_statistic") == "mean"
          and len(details.get("per_sample", ())) == len(entry["per_sample"])
          and _BETTER.get(entry.get("comparison") or "") in ("higher", "lower")):
        better = _BETTER[entry["comparison"]]
        test = paired_mean_test(entry["per_sample"], details["per_sample"], better=better, tolerance=tolerance)
        out.update(method="paired t-test", **test)
        regressed = test["p_value"] < alpha
        moved = f"{test['worse']} {'rose' if better == 'lower' else 'fell'}, mean change {test['mean_change']:+.4g}"
        text = _paired_text(m.get("name", prop), value, base_value, test, moved, "paired t-test", alpha, tolerance)
    else:
        better = _BETTER.get(entry.get("comparison") or rec.get("comparison") or ">=", "higher")
        lo, hi = entry["low"] - tolerance, entry["high"] + tolerance
        regressed = (value < lo) if better == "higher" else (value > hi) if better == "lower" else not lo <= value <= hi
        bound = {"higher": f"below the baseline's lower bound {_fmt(lo)}",
                 "lower": f"above the baseline's upper bound {_fmt(hi)}",
                 "inside": f"outside the baseline's interval [{_fmt(lo)}, {_fmt(hi)}]"}[better]
        out.update(method="interval", bound=[lo, hi])
        text = (f"{m.get('name', prop)} {_fmt(value)} now vs {_fmt(base_value)} (CI {_fmt(entry['low'])}–"
                f"{_fmt(entry['high'])}) in the baseline" + (f"; {bound}" if regressed else ""))
    att, base_att = details.get("attacked"), entry.get("attacked")
    if isinstance(att, dict) and isinstance(base_att, dict):  # a bracket: the attacked side too, for the reader
        out.update(attacked=att["value"], baseline_attacked=base_att["value"])
        text += (f"; attacked {_fmt(att['value'])} now vs {_fmt(base_att['value'])} in the baseline, gap "
                 f"{_fmt(details.get('gap', 0.0))} now vs {_fmt(entry.get('gap') or 0.0)}")
    status = "regression" if regressed else "ok"
    prefix = f"regression of {rec_id}: " if regressed else "no significant regression: "
    return {**out, "status": status, "message": prefix + text}
