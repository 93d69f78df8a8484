"""Compare any two robtest runs: ``python -m robtest.compare A B``.

A and B are JSON reports (``--robust-report``, or the saved runs of ``--robust-history``) or baselines
(``--robust-save-baseline``); with ``--dir FOLDER`` (a ``--robust-history`` folder) either may also be a saved
run's number (``3``), a commit prefix, or ``latest`` / ``previous``. Every record of B is compared with A's record
of the same id by the baseline rules of :func:`robtest.baseline.compare` (an exact McNemar test on paired
per-sample outcomes, a paired t-test on per-sample values, the interval rule otherwise), as if A were B's
baseline. Prints one row per record and the records only one side has; exits 1 when B regressed on any, 2 on a
usage error, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from robtest.baseline import BASELINE_SCHEMA, baseline_entry, compare

__all__ = ["load_run", "compare_runs", "main"]


def _resolve(name: str, folder: str | None) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    if folder is None:
        raise FileNotFoundError(f"expected a report or baseline JSON file but {name!r} does not exist (a saved "
                                "run's number or commit needs --dir FOLDER)")
    runs = sorted(Path(folder).glob("[0-9][0-9][0-9][0-9]_*.json"))
    if not runs:
        raise FileNotFoundError(f"expected saved runs (NNNN_<commit>_<time>.json, from --robust-history) in "
                                f"{folder!r} but found none")
    if name in ("latest", "previous"):
        if name == "previous" and len(runs) < 2:
            raise FileNotFoundError(f"expected at least two saved runs in {folder!r} for 'previous'")
        return runs[-1] if name == "latest" else runs[-2]
    if name.isdigit():
        hit = [r for r in runs if int(r.name[:4]) == int(name)]
    else:
        hit = [r for r in runs if r.name.split("_")[1].startswith(name.lower())]
    if not hit:
        raise FileNotFoundError(f"no saved run {name!r} in {folder!r}; saved: {', '.join(r.name for r in runs)}")
    return hit[-1]  # the latest run of that commit


def load_run(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The records of a report or baseline by id, as report records, and its run metadata."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"expected robtest JSON at {str(path)!r} but could not read it ({exc})") from None
    schema = data.get("schema", "") if isinstance(data, dict) else ""
    if schema.startswith("robtest-report/"):
        return {r["id"]: r for r in data.get("records", []) if r.get("id")}, data.get("run", {})
    if schema == BASELINE_SCHEMA:
        return {k: _as_record(e) for k, e in data.get("records", {}).items()}, data.get("run", {})
    raise ValueError(f"expected a robtest report or baseline at {str(path)!r} but got schema {schema!r}")


def _as_record(e: dict[str, Any]) -> dict[str, Any]:
    """A baseline entry as the report record it was made from (what :func:`robtest.baseline.compare` reads)."""
    details: dict[str, Any] = {k: e[k] for k in ("sample_ids", "outcomes", "labels", "data_fingerprint",
                                                 "attacked", "gap") if e.get(k) is not None}
    if "per_sample" in e:
        details.update(per_sample=e["per_sample"], per_sample_statistic="mean")
    m = {"name": e["property"], "value": e["value"], "low": e["low"], "high": e["high"], "n": e["n"],
         "confidence": e.get("confidence"), "context": e.get("context", ""), "details": details}
    return {"id": e["id"], "property": e["property"], "settings": e.get("settings", {}), "measurement": m,
            "threshold": e.get("threshold"), "comparison": e.get("comparison"), "verdict": e.get("verdict"),
            "model_fingerprint": e.get("model_fingerprint")}


def compare_runs(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], *, alpha: float = 0.05,
                 tolerance: float = 0.0) -> list[dict[str, Any]]:
    """B's records against A's as baseline: one row per id of either (``status`` "only in A" / "only in B" where
    one side lacks it), B's order first."""
    rows = []
    for rid, rec in b.items():
        if rid not in a:
            rows.append({"id": rid, "property": rec["property"], "b": rec["measurement"]["value"],
                         "status": "only in B"})
            continue
        ra, rb, note = _on_common_samples(a[rid], rec)
        got = compare(baseline_entry(ra), rb, rec_id=rid, tolerance=tolerance, alpha=alpha)
        if note and "message" in got:
            got["message"] += note
        rows.append({"id": rid, "property": rec["property"], "a": a[rid]["measurement"]["value"],
                     "b": rec["measurement"]["value"], **got})
    rows += [{"id": rid, "property": rec["property"], "a": rec["measurement"]["value"], "status": "only in A"}
             for rid, rec in a.items() if rid not in b]
    return rows


def _on_common_samples(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Two runs' accuracy records restricted to the samples both evaluated, for a paired test (a sequential run
    stops after a prefix of the same seeded order, so most runs share a prefix), and a note saying so. Records
    whose samples agree, or that hold no per-sample outcomes, come back as they are. Where both hold labels, a
    sample whose label differs makes them other data (left to the fingerprint check)."""
    da, db = a["measurement"].get("details", {}), b["measurement"].get("details", {})
    ids_a, ids_b = da.get("sample_ids"), db.get("sample_ids")
    if not (ids_a and ids_b and "outcomes" in da and "outcomes" in db) or ids_a == ids_b:
        return a, b, ""
    at = {i: k for k, i in enumerate(ids_a)}
    common = [i for i in ids_b if i in at]
    la, lb = da.get("labels"), db.get("labels")
    if not common or (la and lb and any(la[at[i]] != lb[k] for k, i in enumerate(ids_b) if i in at)):
        return a, b, ""
    bt = {i: k for k, i in enumerate(ids_b)}

    def cut(rec: dict[str, Any], d: dict[str, Any], where: dict[int, int]) -> dict[str, Any]:
        keep = {"sample_ids": common, "outcomes": [d["outcomes"][where[i]] for i in common]}
        if d.get("labels"):
            keep["labels"] = [d["labels"][where[i]] for i in common]
        rest = {k: v for k, v in d.items() if k not in ("sample_ids", "outcomes", "labels", "data_fingerprint")}
        value = sum(keep["outcomes"]) / len(common)  # the value on the shared samples, which the test compares
        return {**rec, "data_fingerprint": None,
                "measurement": {**rec["measurement"], "value": value, "details": {**rest, **keep}}}

    note = f" (paired on the {len(common)} samples both runs evaluated, of {len(ids_a)} and {len(ids_b)})"
    return cut(a, da, at), cut(b, db, bt), note


def _label(path: Path, run: dict[str, Any]) -> str:
    commit = (run.get("git_commit") or "")[:12]
    return f"{path.name} (commit {commit or '?'}, {run.get('started', '?')}, torch {run.get('torch', '?')})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robtest.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the earlier run: a report or baseline JSON, or with --dir a number or commit")
    parser.add_argument("b", help="the later run, compared with A as its baseline")
    parser.add_argument("--dir", help="a --robust-history folder to look A and B up in")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--tolerance", type=float, default=0.0, help="non-inferiority margin (default 0)")
    args = parser.parse_args(argv)
    try:
        pa, pb = _resolve(args.a, args.dir), _resolve(args.b, args.dir)
        (a, run_a), (b, run_b) = load_run(pa), load_run(pb)
    except (FileNotFoundError, ValueError) as exc:
        print(f"robtest compare: {exc}", file=sys.stderr)
        return 2
    rows = compare_runs(a, b, alpha=args.alpha, tolerance=args.tolerance)
    print(f"A: {_label(pa, run_a)}\nB: {_label(pb, run_b)}")
    for r in rows:
        va = f"{r['a']:.4g}" if "a" in r else "—"
        vb = f"{r['b']:.4g}" if "b" in r else "—"
        line = f"{r['status']:<14} {r['id']}  {r['property']}: A {va} → B {vb}"
        if r.get("message"):
            line += f"  ({r['message']})"
        print(line)
    regressed = sum(1 for r in rows if r["status"] == "regression")
    print(f"{len(rows)} records: {regressed} regressed, {sum(r['status'] == 'ok' for r in rows)} ok, "
          f"{sum(r['status'].startswith('only') for r in rows)} on one side only, "
          f"{sum(r['status'] in ('mismatch', 'not compared') for r in rows)} not comparable")
    return 1 if regressed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
