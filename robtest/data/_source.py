"""Turn what the user gives (a Dataset, a DataLoader, a tuple (x, y)) into batches of tensors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from robtest import progress
from robtest.errors import InputError, InvalidArgument
from robtest.validation import integer

__all__ = ["indexed_source", "iter_batches", "iter_indexed", "num_samples", "order"]

_EXPECTED = "a torch Dataset, a DataLoader, or a tuple (x, y) of tensors"


def order(n: int, samples: int | None, seed: int | None, *, in_data_order: bool = False,
          sample_ids: Sequence[int] | None = None) -> torch.Tensor:
    """The sample ids an evaluation visits, in the order it visits them: a seeded random permutation of all
    ``n`` samples, cut to the first ``samples``. The same for every test, worker and run with the same seed,
    whatever order the data came in, so a subset and a sequential verdict's early looks see every class.

    ``seed=None`` keeps the data's own order (for reading a dataset into memory, not for evaluating it);
    ``in_data_order`` visits the same seeded subset in the data's order (for per-sample results).

    ``sample_ids`` replaces the seeded order with exactly these ids, in this order (a baseline comparison
    evaluates the baseline's samples, whatever the seed and ``samples``).

    >>> order(10, 4, seed=0).tolist()
    [4, 1, 7, 5]
    >>> order(10, None, seed=3, sample_ids=[9, 0]).tolist()
    [9, 0]
    """
    if sample_ids is not None:
        ids = torch.as_tensor(list(sample_ids), dtype=torch.long, device="cpu")
        if ids.ndim != 1 or not ids.numel():
            raise InvalidArgument(f"sample_ids: expected a non-empty list of sample indices but got {len(ids)} items")
        bad = ids[(ids < 0) | (ids >= n)]
        if bad.numel():
            raise InvalidArgument(f"sample_ids: expected indices in [0, {n}) for data of {n} samples but got "
                                  f"{bad[:5].tolist()}; the data differ from the ones the ids were taken on")
        return ids.sort().values if in_data_order else ids
    if seed is None:
        perm = torch.arange(n, device="cpu")
    else:  # the order is bookkeeping on the host: the same on every device
        perm = torch.randperm(n, generator=torch.Generator(device="cpu").manual_seed(int(seed)), device="cpu")
    perm = perm if samples is None else perm[:samples]
    return perm.sort().values if in_data_order else perm


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
            return torch.as_tensor(y, device="cpu")
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


def _materialise(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for batch in loader:
        x, y = _as_pair(batch, "data")
        xs.append(x)
        ys.append(y)
    if not xs:
        raise InputError("data: expected at least one sample but the DataLoader yielded none")
    return torch.cat(xs), torch.cat(ys)


def check_sizes(batch_size: object, samples: object) -> None:
    integer("batch_size", batch_size)
    integer("samples", samples, optional=True)


def _map_style(ds: object) -> bool:
    return isinstance(ds, Dataset) and hasattr(ds, "__len__") and not isinstance(ds, torch.utils.data.IterableDataset)


def indexed_source(data: object) -> tuple[object, int]:
    """``(source, n)``: data that :func:`iter_indexed` can read any ids of, and its size, without reading it.

    A map-style Dataset or a DataLoader over one stays as it is (samples are read per batch, so a dataset of
    any size streams with memory bounded by the batch); tensors ``(x, y)`` are checked; only a DataLoader over
    an iterable dataset, which has no ids to read, is read once into memory.

    >>> src, n = indexed_source((torch.zeros(5, 1, 2, 2), torch.zeros(5, dtype=torch.long)))
    >>> n
    5
    """
    if isinstance(data, DataLoader):
        if _map_style(data.dataset):
            n = len(data.dataset)  # type: ignore[arg-type]
            _nonempty(n)
            return data, n
        data = _materialise(data)
    if isinstance(data, (tuple, list)):
        next(iter_indexed(data, batch_size=1, samples=1))  # the checks and errors of a full read, on one sample
        x, y = data
        return (x, _as_labels(y, "data: y")), int(x.shape[0])
    if _map_style(data):
        n = len(data)  # type: ignore[arg-type]
        _nonempty(n)
        return data, n
    raise InputError(f"data: expected {_EXPECTED} but got {type(data).__name__}")


def iter_indexed(data: object, *, batch_size: int = 256, samples: int | None = None, seed: int | None = 0,
                 in_data_order: bool = False, sample_ids: Sequence[int] | None = None
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """:func:`_iter_indexed`, reporting each batch to the current :func:`robtest.progress.task` once the
    caller is done with it (a long evaluation shows samples done, rate and time left)."""
    planned = len(sample_ids) if sample_ids is not None else num_samples(data, samples)
    for ids, x, y in _iter_indexed(data, batch_size=batch_size, samples=samples, seed=seed,
                                   in_data_order=in_data_order, sample_ids=sample_ids):
        yield ids, x, y
        progress.advance(int(ids.shape[0]), planned or 0)


def _iter_indexed(data: object, *, batch_size: int = 256, samples: int | None = None, seed: int | None = 0,
                  in_data_order: bool = False, sample_ids: Sequence[int] | None = None
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield CPU batches ``(ids, x, y)`` in the seeded order of :func:`order`; ``ids`` index the data.
    ``sample_ids`` visits exactly those samples instead (see :func:`order`).

    A DataLoader over a map-style dataset is read through its dataset (with its collate function and workers),
    so its own order, shuffled or sorted, does not matter; one over an iterable dataset is read once into
    memory and then ordered. Empty data is an error, never an evaluation of nothing.
    """
    check_sizes(batch_size, samples)
    if isinstance(data, DataLoader):
        ds = data.dataset
        if isinstance(ds, Dataset) and hasattr(ds, "__len__") and not isinstance(ds, torch.utils.data.IterableDataset):
            n = len(ds)  # type: ignore[arg-type]
            _nonempty(n)
            idx = order(n, samples, seed, in_data_order=in_data_order, sample_ids=sample_ids)
            extra = {}
            if data.num_workers:  # the user's loader settings: workers, prefetching, pinned memory
                extra = {"prefetch_factor": data.prefetch_factor, "persistent_workers": False}
            loader = DataLoader(Subset(ds, idx.tolist()), batch_size=batch_size, shuffle=False,
                                collate_fn=data.collate_fn, num_workers=data.num_workers, pin_memory=data.pin_memory,
                                worker_init_fn=data.worker_init_fn,
                                multiprocessing_context=data.multiprocessing_context, **extra)
            yield from _with_ids(loader, idx, batch_size)
            return
        # the loader's own order: stream it, nothing to reorder
        if seed is None and samples is None and sample_ids is None:
            i = 0
            for batch in data:
                x, y = _as_pair(batch, "data")
                for j in range(0, x.shape[0], batch_size):
                    xb, yb = x[j:j + batch_size], y[j:j + batch_size]
                    yield torch.arange(i, i + xb.shape[0], device="cpu"), xb, yb
                    i += xb.shape[0]
            _nonempty(i)
            return
        data = _materialise(data)
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
        _nonempty(x.shape[0])
        idx = order(x.shape[0], samples, seed, in_data_order=in_data_order, sample_ids=sample_ids)
        for i in range(0, idx.shape[0], batch_size):
            ids = idx[i:i + batch_size]
            yield ids, x[ids], y[ids]
        return
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        n = len(data)  # type: ignore[arg-type]
        _nonempty(n)
        idx = order(n, samples, seed, in_data_order=in_data_order, sample_ids=sample_ids)
        loader = DataLoader(Subset(data, idx.tolist()), batch_size=batch_size, shuffle=False, num_workers=0)
        yield from _with_ids(loader, idx, batch_size)
        return
    raise InputError(f"data: expected {_EXPECTED} but got {type(data).__name__}")


def _nonempty(n: int) -> None:
    if n == 0:
        raise InputError("data: expected at least one sample but got an empty dataset; check the data fixture")


def _with_ids(loader: DataLoader, idx: torch.Tensor, batch_size: int
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    i = 0
    for batch in loader:
        x, y = _as_pair(batch, "data")
        yield idx[i:i + x.shape[0]], x, y
        i += x.shape[0]


def iter_batches(data: object, *, batch_size: int = 256, samples: int | None = None, seed: int | None = 0,
                 in_data_order: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield CPU batches ``(x, y)`` in the seeded order of :func:`order` (``samples``: its first N;
    ``seed=None``: the data's own order)."""
    for _, x, y in iter_indexed(data, batch_size=batch_size, samples=samples, seed=seed, in_data_order=in_data_order):
        yield x, y
