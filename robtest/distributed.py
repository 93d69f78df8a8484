"""One property's samples sharded over the ranks of a ``torchrun`` job (torch.distributed: gloo on CPU, NCCL on GPUs).

Under ``python -m torch.distributed.run --nproc-per-node K -m pytest --robust`` every rank runs the same tests.
An evaluation splits the samples of each segment (the stretch up to the next planned sequential look, or all of
them) over the ranks, ``ids[rank::world]``, each rank on its own device (``cuda:LOCAL_RANK``), and exchanges the
per-sample outcomes with one collective per segment; every rank then holds the outcomes of all samples in the
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

import datetime
import os
import traceback
from collections.abc import Sequence
from typing import Any

from robtest.errors import DistributedError

__all__ = ["world", "rank", "is_main", "active", "init", "started", "exchange", "shard", "local_device_index",
           "barrier_gather"]

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


def shard(ids: Sequence[int] | Any) -> Any:
    """This rank's share of ``ids``: every ``world``-th one from ``rank`` (strided, so every rank sees a fair
    sample of the seeded order)."""
    return ids[rank()::world()]


_BROKEN: list[str] = []  # set once an exchange failed: the ranks are out of step and stay so


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
    records = _gather({"ok": error is None, "error": said, "payload": None if error is not None else payload})
    failed = [(r, rec["error"]) for r, rec in enumerate(records) if not rec["ok"]]
    if failed:
        if error is not None:
            raise error
        names = "; ".join(f"rank {r} raised {msg}" for r, msg in failed)
        raise DistributedError(f"{where}: {names} (this is rank {rank()} of {world()}; the traceback is in that "
                               "rank's output)")
    return [rec["payload"] for rec in records]


def barrier_gather(payload: Any) -> list[Any]:
    """Every rank's ``payload`` in rank order (the plugin's end-of-session exchange)."""
    return exchange(payload, where="session")
