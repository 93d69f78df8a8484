"""Turn what the user gives (a Dataset, a DataLoader, a tuple (x, y)) into batches of tensors."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from robtest.errors import InputError, InvalidArgument

__all__ = ["iter_batches", "num_samples"]

_EXPECTED = "a torch Dataset, a DataLoader, or a tuple (x, y) of tensors"


def _subset_indices(n: int, samples: int | None, seed: int) -> torch.Tensor | None:
    if samples is None or samples >= n:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:samples].sort().values


def num_samples(data: object, samples: int | None = None) -> int | None:
    """How many samples an evaluation of ``data`` will see, if it can be known without iterating."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        n = len(data[0])
    elif isinstance(data, DataLoader):
        try:
            n = len(data.dataset)  # type: ignore[arg-type]
        except TypeError:
            return samples
    elif isinstance(data, Dataset) and hasattr(data, "__len__"):
        n = len(data)  # type: ignore[arg-type]
    else:
        return None
    return n if samples is None else min(n, samples)


def _describe(items: tuple | list) -> str:
    shown = ", ".join(f"tensor {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
                      for t in items[:4])
    return shown + (", ..." if len(items) > 4 else "")


def _as_labels(y: object, where: str) -> object:
    """Labels given as a Python list or a numpy array become a tensor; anything else is left for check_batch."""
    if isinstance(y, torch.Tensor):
        return y
    if isinstance(y, (list, tuple)) or type(y).__module__ == "numpy":
        try:
            return torch.as_tensor(y)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"{where}: expected labels as a tensor or a list of integers but got a "
                             f"{type(y).__name__} torch cannot convert; use torch.tensor(labels)") from None
    return y


def _as_pair(batch: object, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        raise InputError(f"{where}: expected batches (x, y) but got a dict with keys {sorted(batch)}; "
                         "wrap the data so it yields (image, label) pairs")
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise InputError(f"{where}: expected batches (x, y) but got {type(batch).__name__}")
    if len(batch) > 2:
        # (x, index, y), (x, y, weight), (x, y, path)...: robtest does not guess which one is the label.
        raise InputError(
            f"{where}: expected batches (x, y) of 2 items but got {len(batch)} items ({_describe(batch)}); robtest "
            "does not guess which is the label: wrap the dataset so it yields (image, label), e.g. a Dataset "
            "whose __getitem__ returns (x, y), or pass the tensors (x, y)")
    x, y = batch[0], _as_labels(batch[1], where)
    return x, y  # type: ignore[return-value]


def iter_batches(data: object, *, batch_size: int = 256, samples: int | None = None, seed: int = 0
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield CPU batches ``(x, y)``; ``samples`` keeps a seeded random subset (the first N for a DataLoader)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size: expected an integer >= 1 but got {batch_size!r}")
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise InvalidArgument(f"samples: expected an integer >= 1 or None but got {samples!r}")
    empty = True
    for xb, yb in _batches(data, batch_size=batch_size, samples=samples, seed=seed):
        empty = False
        yield xb, yb
    if empty:
        raise InputError("data: expected at least one sample but got an empty dataset")


def _batches(data: object, *, batch_size: int, samples: int | None, seed: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, (tuple, list)):
        if len(data) == 2 and isinstance(data[0], torch.Tensor):
            data = (data[0], _as_labels(data[1], "data: y"))
        if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
            hint = ""
            if len(data) > 2:
                hint = "; robtest does not guess which is the label: pass (x, y)"
            elif len(data) == 2 and type(data[0]).__module__ == "numpy":
                hint = "; use torch.from_numpy(x).float() for x"
            raise InputError(f"data: expected {_EXPECTED} but got a {type(data).__name__} of {len(data)} items "
                             f"({_describe(data)}){hint}")
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise InputError(
                f"data: expected x and y with one label per sample but got x {tuple(x.shape)}, y {tuple(y.shape)}"
            )
        idx = _subset_indices(x.shape[0], samples, seed)
        if idx is not None:
            x, y = x[idx], y[idx]
        for i in range(0, x.shape[0], batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
        return
    if isinstance(data, DataLoader):
        seen = 0
        for batch in data:
            x, y = _as_pair(batch, "data")
            if samples is not None and seen + x.shape[0] > samples:
                x, y = x[: samples - seen], y[: samples - seen]
            seen += x.shape[0]
            # Re-chunk so the evaluation batch size is ours, whatever the loader's is.
            for i in range(0, x.shape[0], batch_size):
                yield x[i:i + batch_size], y[i:i + batch_size]
            if samples is not None and seen >= samples:
                return
        return
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        idx = _subset_indices(len(data), samples, seed)  # type: ignore[arg-type]
        ds = data if idx is None else Subset(data, idx.tolist())
        for batch in DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0):
            yield _as_pair(batch, "data")
        return
    raise InputError(f"data: expected {_EXPECTED} but got {type(data).__name__}")
