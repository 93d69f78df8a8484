"""One property's samples sharded over the ranks of a ``torchrun`` job (torch.distributed: gloo on CPU, NCCL on GPUs).

Under ``python -m torch.distributed.run --nproc-per-node K -m pytest --robust`` every rank runs the same tests.
An evaluation splits the samples of each segment (the stretch up to the next planned sequential look, or all of
them) over the ranks in whole batches, batch ``k`` on rank ``k % world`` (the batches one process would
evaluate), each rank on its own device (``cuda:LOCAL_RANK``), and exchanges the per-sample outcomes with one
collective per segment; every rank then holds the outcomes of all samples in the
single-process order and computes the same counts, interval, verdict and stopping decision. Every sample draws
its random numbers from its own stream (:mod:`robtest.rng`), so the outcomes are those of one process.

Every exchange carries an ok/failed flag: a rank whose share raised sends its error instead of outcomes, and
every rank then raises :class:`~robtest.errors.DistributedError` naming it (the failing rank re-raises its own
error), so the ranks stay in step for the next test and nobody waits for a rank that will not come. A rank that
dies or hangs makes the others' exchange time out after ``timeout`` seconds (``ROBTEST_DIST_TIMEOUT``, default
1800) with an error saying so; torchrun itself stops the job when a worker process exits with an error.

This module imports torch.distributed only when a job has more than one rank.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from robtest.errors import DistributedError

__all__ = ["world", "rank", "is_main", "active", "init", "started", "exchange", "local_device_index",
           "barrier_gather", "map_share", "share_positions", "share_size", "merge", "in_step"]

DEFAULT_TIMEOUT_S = 1800.0
_GROUP: list[Any] = []  # the gloo group robtest's exchanges go through, created once per process


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def world() -> int:
    """How many ranks the job has (``WORLD_SIZE``, 1 outside torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank (``RANK``, 0 outside torchrun)."""
    return _env_int("RANK", 0) if world() > 1 else 0


def is_main() -> bool:
    """Rank 0: the one that prints the summary and writes reports, baselines and artifacts."""
    return rank() == 0


def active() -> bool:
    return world() > 1


def local_device_index() -> int:
    """The GPU this rank uses: ``LOCAL_RANK`` (its index on its node)."""
    return _env_int("LOCAL_RANK", 0)


def timeout_s() -> float:
    try:
        return float(os.environ.get("ROBTEST_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def init() -> Any:
    """The process group for robtest's exchanges, initialised from the torchrun environment when nobody has yet
    (NCCL for a CUDA job's own collectives, and always a gloo group for robtest's small CPU-side messages)."""
    if _GROUP:
        return _GROUP[0]
    import torch
    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=timeout_s())
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=timeout)
    if dist.get_world_size() != world():
        raise DistributedError(f"torch.distributed: expected WORLD_SIZE={world()} ranks but the process group has "
                               f"{dist.get_world_size()}; launch with torchrun and do not change the group")
    _GROUP.append(dist.new_group(backend="gloo", timeout=timeout))
    return _GROUP[0]


def started() -> bool:
    """Whether this process took part in robtest's exchanges (and its group is still in step)."""
    return bool(_GROUP) and not _BROKEN


def share_positions(n: int, batch_size: int, of_rank: int | None = None) -> Any:
    """The positions (0..n-1) of a stretch of ``n`` samples that rank ``of_rank`` (default: this one) evaluates:
    whole batches of ``batch_size``, batch ``k`` on rank ``k % world``. Every rank evaluates exactly the batches
    one process would, sample for sample, so no number changes with the number of ranks, not even in the last
    bit (a kernel may round a row differently in a batch of other rows)."""
    import torch

    r = rank() if of_rank is None else of_rank
    starts = range(r * batch_size, n, world() * batch_size)
    if not starts:
        return torch.zeros(0, dtype=torch.long, device="cpu")
    return torch.cat([torch.arange(s, min(s + batch_size, n), device="cpu") for s in starts])


def share_size(ends: Sequence[int], batch_size: int) -> int:
    """How many samples this rank evaluates of segments ending at ``ends`` (the looks), each shared by
    :func:`share_positions`."""
    return sum(len(share_positions(end - start, batch_size)) for start, end in zip([0, *ends[:-1]], ends, strict=True))


def merge(parts: Sequence[Sequence[Any]], n: int, batch_size: int) -> list[Any]:
    """The ranks' shares (in rank order, each in its own order) back in the order of the ``n`` samples."""
    out: list[Any] = [None] * n
    for r, part in enumerate(parts):
        for pos, item in zip(share_positions(n, batch_size, r).tolist(), part, strict=True):
            out[pos] = item
    return out


_BROKEN: list[str] = []  # set once an exchange failed: the ranks are out of step and stay so
_SEQ = [0]  # exchanges this process took part in: every rank must be at the same one


def _gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    if _BROKEN:
        raise DistributedError(f"rank {rank()}: not evaluating, an earlier exchange failed ({_BROKEN[0]})")
    out: list[Any] = [None] * world()
    try:
        group = init()
        dist.all_gather_object(out, obj, group=group)
    except (RuntimeError, dist.DistError) as err:  # a timeout (also while forming the group), a peer gone
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        _BROKEN.append(first)
        raise DistributedError(
            f"rank {rank()}: an exchange with the other ranks failed ({first}); another rank died, hung or ran "
            f"past ROBTEST_DIST_TIMEOUT={timeout_s():g}s; see that rank's output") from None
    return out


def exchange(payload: Any, *, error: BaseException | None = None, where: str = "evaluation") -> list[Any]:
    """Every rank's ``payload``, in rank order; if any rank passes ``error``, every rank raises naming it
    (the failing rank re-raises its own error)."""
    if not active():
        if error is not None:
            raise error
        return [payload]
    said = None
    if error is not None:
        said = "".join(traceback.format_exception_only(type(error), error)).strip()
    _SEQ[0] += 1
    records = _gather({"ok": error is None, "error": said, "payload": None if error is not None else payload,
                       "seq": _SEQ[0], "where": where, "test": os.environ.get("PYTEST_CURRENT_TEST", "")})
    steps = {(rec["seq"], rec["where"], rec["test"]) for rec in records}
    if len(steps) > 1:  # a rank skipped an exchange (it failed between two): never combine unrelated payloads
        said = "; ".join(f"rank {r} at exchange {rec['seq']} ({rec['where']}{', ' if rec['test'] else ''}"
                         f"{rec['test']})" for r, rec in enumerate(records))
        _BROKEN.append("the ranks were out of step")
        raise DistributedError(f"{where}: the ranks are out of step ({said}): a rank failed between two exchanges "
                               "(see its output); the remaining robustness tests fail at once")
    failed = [(r, rec["error"]) for r, rec in enumerate(records) if not rec["ok"]]
    if failed:
        if error is not None:
            raise error
        names = "; ".join(f"rank {r} raised {msg}" for r, msg in failed)
        raise DistributedError(f"{where}: {names} (this is rank {rank()} of {world()}; the traceback is in that "
                               "rank's output)")
    return [rec["payload"] for rec in records]


@contextlib.contextmanager
def in_step(where: str) -> Iterator[None]:
    """Run the block on every rank and exchange whether it raised: if it raised anywhere, it raises everywhere
    (the failing rank its own error, the others a DistributedError naming it), so no rank goes on to an
    exchange the others will not reach. One process: the block as it is."""
    error = None
    try:
        yield
    except Exception as err:  # heard of by every rank at the exchange, and raised there
        error = err
    if active() or error is not None:
        exchange(None, error=error, where=where)


def map_share(ids: Any, compute: Any, *, batch_size: int, where: str = "evaluation") -> list[Any]:
    """``compute(share, positions)`` on every rank, with this rank's share of ``ids`` (its whole batches) and
    their positions in ``ids``; the ranks' results in rank order (one process: ``[compute(ids, arange)]``). If
    ``compute`` raises on any rank, every rank raises (see :func:`exchange`)."""
    error = None
    payload = None
    try:
        pos = share_positions(len(ids), batch_size)
        payload = compute(ids[pos], pos)
    except Exception as err:  # every rank hears of it at the exchange, and all raise
        error = err
    return exchange(payload, error=error, where=where)


def barrier_gather(payload: Any) -> list[Any]:
    """Every rank's ``payload`` in rank order (the plugin's end-of-session exchange)."""
    return exchange(payload, where="session")
