"""Reuse of unchanged measurements across runs (``--robust-cache on``): a property whose model, data, settings and
versions are all unchanged is not evaluated again; its measurement comes back from disk and is judged afresh
(the rule, threshold and baseline of this run apply).

The key is a sha256 of everything that determines the numbers: the property and its settings (threshold
included, since it steers a sequential stop), the run's samples, seed and confidence, the sequential flag and
sample budget, the paired baseline sample ids, precision and channels-last, the model's fingerprint (its state
dict) and the source code of every module class in it (a changed ``forward`` with the same weights is another
model), the data fingerprint (size and first batch), the device type, and the robtest, torch and Python versions.
The batch size is not in it: it changes no number. A time budget (``max_seconds``) is never cached: where it
stops depends on the machine.

Entries are JSON files (never pickles) under pytest's cache folder (``.pytest_cache/d/robtest-measurements``),
written atomically, so xdist workers can share them. An evaluation in progress saves its finished segments
there too (``<key>.partial.<k>.pt``, tensors and numbers read back with ``weights_only=True``): a run killed
mid-way resumes where it stopped, with the numbers of an uninterrupted run. ``--robust-cache clear`` empties the
folder first.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["MeasurementCache", "code_fingerprint"]

FOLDER = "robtest-measurements"


def code_fingerprint(model: Any) -> str:
    """sha256 of the source of the model's class and of every submodule's class (by qualified name where the
    source cannot be read, e.g. a class defined in a REPL or a C extension)."""
    import torch

    classes = {type(m) for m in model.modules()} if isinstance(model, torch.nn.Module) else {type(model)}
    digest = hashlib.sha256()
    for cls in sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        if cls.__module__.startswith("torch."):
            continue  # torch's own layers: the torch version is in the key
        try:
            digest.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            pass
    return digest.hexdigest()


class MeasurementCache:
    """Measurements by key, as JSON files in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        import torch

        import robtest

        full = {**parts, "robtest": robtest.__version__, "torch": torch.__version__,
                "python": platform.python_version()}
        return hashlib.sha256(json.dumps(full, sort_keys=True, default=repr).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # missing, or half-written by a process that died: evaluate again

    def put(self, key: str, record: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, default=repr)
        os.replace(tmp, self.folder / f"{key}.json")

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        gone = 0
        for p in [*self.folder.glob("*.json"), *self.folder.glob("*.partial.*.pt")]:
            p.unlink(missing_ok=True)
            gone += 1
        return gone


def measurement_from_record(rec: dict[str, Any]) -> Any:
    """A :class:`~robtest.Measurement` from its :meth:`~robtest.Measurement.to_record` (diagnostics not allowed:
    the call's ``allow`` is applied again)."""
    from robtest.diagnostics import Diagnostic
    from robtest.measurement import Measurement

    diags = tuple(Diagnostic(d["indicator"], d["message"], dict(d.get("evidence", {}))) for d in rec["diagnostics"])
    return Measurement(rec["name"], rec["value"], rec["low"], rec["high"], n=rec["n"], confidence=rec["confidence"],
                       context=rec["context"], details=rec["details"], diagnostics=diags)
