"""Train once, share everywhere: a file cache of trained weights, safe for parallel pytest-xdist workers.

``cached_model(key, build, fit, directory)`` returns ``build()`` with the weights ``fit`` produced the first
time ``key`` was asked for under ``directory``. A file lock per key makes the first worker train while the
others wait and then load the same state dict, so every worker evaluates identical weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

__all__ = ["cached_model"]

_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def cached_model(key: str, build: Callable[[], nn.Module], fit: Callable[[nn.Module], nn.Module],
                 directory: str | Path | None) -> nn.Module:
    """``fit(build())``, stored under ``directory/key.pt``; later calls (any process) load it instead.

    ``key`` must name everything that changes the weights (recipe, data, seed). With ``directory=None``
    nothing is cached. The model comes back in eval mode.

    >>> import tempfile, torch
    >>> calls = []
    >>> def fit(m):
    ...     calls.append(1)
    ...     with torch.no_grad(): _ = m.weight.fill_(2.0)
    ...     return m
    >>> with tempfile.TemporaryDirectory() as d:
    ...     a = cached_model("lin", lambda: torch.nn.Linear(2, 1), fit, d)
    ...     b = cached_model("lin", lambda: torch.nn.Linear(2, 1), fit, d)
    >>> len(calls), float(b.weight[0, 0])
    (1, 2.0)
    """
    if directory is None:
        return fit(build()).eval()
    from filelock import FileLock

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    name = _SAFE.sub("_", key)
    path = root / f"{name}.pt"
    with FileLock(str(root / f"{name}.lock")):
        model = build()
        if path.exists():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        model = fit(model).eval()
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
    return model
