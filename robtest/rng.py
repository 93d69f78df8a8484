"""Random numbers keyed by (seed, sample id, stream, draw): the same for a sample whatever batch it is in.

A ``torch.Generator`` hands out numbers in the order they are asked for, so the random start of sample 17 depends
on how many samples came before it in its batch, on the batch size, on the out-of-memory split and on the rank
that evaluates it. :class:`SampleRNG` computes every number from a counter-based hash instead: element ``e`` of
draw ``c`` of sample ``i`` in stream ``k`` is ``hash(k, i, c, e)``, with 32-bit integer arithmetic done in int64
tensors (exact on every device). Attacks ask it for numbers on the rows they hold (:meth:`SampleRNG.take`) and
open a named sub-stream (:meth:`SampleRNG.fork`) per restart, target, phase or query, so that the draws a sample
gets depend only on its own trajectory, never on which other samples share its batch.

Attacks also accept a plain ``torch.Generator`` (or None) for direct use: :func:`as_rng` wraps it in
:class:`TorchRNG`, which draws from it in the order asked, exactly as before.

>>> ids = torch.tensor([3, 8, 5])
>>> a = SampleRNG(0, ids).rand((3, 4))
>>> b = SampleRNG(0, torch.tensor([5, 3])).rand((2, 4))  # another batch: sample 5 first, 8 absent
>>> torch.equal(a[2], b[0]) and torch.equal(a[0], b[1])
True
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["SampleRNG", "TorchRNG", "as_rng", "global_rng_kept", "mix32", "seed_batch"]

_M32 = 0xFFFFFFFF


def _mul32_(x: torch.Tensor, c: int) -> torch.Tensor:
    # (x·c) mod 2³² for x < 2³² held in int64, in place: c is split in 16-bit halves so that no product leaves
    # int64's range (signed overflow is not something to rely on across devices).
    lo, hi = c & 0xFFFF, c >> 16
    high = (x * hi).bitwise_and_(0xFFFF).bitwise_left_shift_(16)
    return x.mul_(lo).add_(high).bitwise_and_(_M32)


def _mix_(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer hash (Wellons' lowbias32), in place on an int64 tensor of values < 2³²."""
    x.bitwise_xor_(x >> 16)
    _mul32_(x, 0x7FEB352D)
    x.bitwise_xor_(x >> 15)
    _mul32_(x, 0x846CA68B)
    return x.bitwise_xor_(x >> 16)


def _mix(x: torch.Tensor) -> torch.Tensor:
    return _mix_(x.clone())


def mix32(*values: int) -> int:
    """The same hash on Python integers, chained over ``values``: how stream keys are derived.

    >>> mix32(0) == mix32(0) != mix32(1)
    True
    """
    h = 0x9E3779B9
    for v in values:
        x = (h ^ (int(v) & _M32)) & _M32
        x ^= x >> 16
        x = (x * 0x7FEB352D) & _M32
        x ^= x >> 15
        x = (x * 0x846CA68B) & _M32
        h = x ^ (x >> 16)
    return h


class SampleRNG:
    """Per-sample counter-based random numbers for the rows ``ids`` (one sample id per row).

    Every draw takes a shape whose first dimension is the number of rows. :meth:`take` gives the rows ``idx``
    (sharing the draw counter, so a draw on the subset counts for the stream); :meth:`fork` a fresh stream per
    ``tag`` (a restart, a target, a query); :meth:`rows` fresh rows with a copy of the counter (a chunk retried
    after running out of memory draws what the first attempt drew).
    """

    def __init__(self, seed: int, ids: torch.Tensor | list[int], *, device: torch.device | str | None = None,
                 _key: int | None = None, _state: list[int] | None = None) -> None:
        ids = torch.as_tensor(ids, dtype=torch.int64, device=device)
        if ids.dim() != 1:
            raise ValueError(f"ids: expected one sample id per row (N,) but got shape {tuple(ids.shape)}")
        self.ids = ids
        self.seed = int(seed)
        self.key = mix32(self.seed) if _key is None else _key
        self._state = [0] if _state is None else _state
        self._row_hash: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, idx: torch.Tensor) -> SampleRNG:
        return SampleRNG(self.seed, self.ids[idx.to(self.ids.device)], _key=self.key, _state=self._state)

    def rows(self, idx: torch.Tensor | slice) -> SampleRNG:
        ids = self.ids[idx] if isinstance(idx, slice) else self.ids[idx.to(self.ids.device)]
        return SampleRNG(self.seed, ids, _key=self.key, _state=[self._state[0]])

    def fork(self, *tags: int) -> SampleRNG:
        return SampleRNG(self.seed, self.ids, _key=mix32(self.key, *tags))

    def to(self, device: torch.device | str) -> SampleRNG:
        return SampleRNG(self.seed, self.ids.to(device), _key=self.key, _state=self._state)

    def _bits(self, shape: tuple[int, ...], device: torch.device | str | None, salt: int = 0) -> torch.Tensor:
        shape = tuple(int(s) for s in shape)
        if not shape or shape[0] != len(self):
            raise ValueError(f"draw shape: expected ({len(self)}, ...) for {len(self)} rows but got {shape}")
        counter = self._state[0]
        if salt == 0:
            self._state[0] += 1
        ids = self.ids.to(device) if device is not None else self.ids
        row = _mix((ids & _M32) ^ mix32(self.key, counter, salt))  # (N,)
        per_row = math.prod(shape[1:])
        elem = _mix(torch.arange(per_row, dtype=torch.int64, device=ids.device) ^ 0x5BD1E995)
        # One round per element: the row hash and the element hash are each already mixed.
        return _mix_(row[:, None] ^ elem[None, :]).view(shape)

    def rand(self, shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32,
             device: torch.device | str | None = None) -> torch.Tensor:
        """Uniform in [0, 1), 24 bits of resolution."""
        return (self._bits(shape, device) >> 8).to(dtype) * (2.0 ** -24)

    def randn(self, shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> torch.Tensor:
        """Standard normal (Box–Muller on two uniform draws at the same counter)."""
        b1 = self._bits(shape, device, salt=1)
        b2 = self._bits(shape, device)
        u1 = ((b1 >> 8) + 1).to(dtype) * (2.0 ** -24)  # (0, 1]: log is finite
        u2 = (b2 >> 8).to(dtype) * (2.0 ** -24)
        return (-2 * u1.log()).sqrt() * torch.cos(2 * math.pi * u2)

    def randint(self, low: int, high: int, shape: tuple[int, ...], *,
                device: torch.device | str | None = None) -> torch.Tensor:
        """Integers in [low, high)."""
        span = int(high) - int(low)
        if span < 1:
            raise ValueError(f"randint: expected low < high but got [{low}, {high})")
        return self._bits(shape, device) % span + int(low)


class TorchRNG:
    """A ``torch.Generator`` (or None: torch's global RNG) behind :class:`SampleRNG`'s interface: numbers in the
    order asked, as attacks drew them before per-sample streams existed; ``take`` and ``fork`` change nothing."""

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def _device(self, device: torch.device | str | None) -> torch.device | str | None:
        # without a device the numbers come where the generator lives (a CUDA generator draws on CUDA)
        return self.generator.device if device is None and self.generator is not None else device

    def take(self, idx: torch.Tensor) -> TorchRNG:
        return self

    def rows(self, idx: torch.Tensor | slice) -> TorchRNG:
        return self

    def fork(self, *tags: int) -> TorchRNG:
        return self

    def rand(self, shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32,
             device: torch.device | str | None = None) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self._device(device), dtype=dtype)

    def randn(self, shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self._device(device), dtype=dtype)

    def randint(self, low: int, high: int, shape: tuple[int, ...], *,
                device: torch.device | str | None = None) -> torch.Tensor:
        return torch.randint(low, high, shape, generator=self.generator, device=self._device(device))


RNG = SampleRNG | TorchRNG


def as_rng(generator: torch.Generator | SampleRNG | TorchRNG | None) -> SampleRNG | TorchRNG:
    """What an attack draws from: a :class:`SampleRNG` as given, a ``torch.Generator`` (or None) wrapped."""
    if isinstance(generator, (SampleRNG, TorchRNG)):
        return generator
    return TorchRNG(generator)


_BATCH_TAG = 0x6A09E667  # a stream of its own: the global RNG's seed per batch is no sample's stream


def seed_batch(seed: int, ids: torch.Tensor) -> None:
    """Seed torch's global RNG (every device) for the batch of samples ``ids`` from ``seed`` and the batch's
    first id and size, before the batch is evaluated. A randomised model (dropout at test time, noise layers)
    draws from the global RNG: seeded per batch, its draws depend on the batch only, and a torchrun rank
    evaluates the batches one process evaluates, so they do not change with the number of ranks either (they
    do with the batch size: those draws are the model's, not per sample)."""
    first = int(ids[0]) if ids.numel() else 0
    torch.manual_seed(mix32(int(seed), first, int(ids.numel()), _BATCH_TAG))


def global_rng_kept(device: torch.device) -> Any:
    """A context that gives torch's global RNG (the CPU's and ``device``'s) back as it found it: the batches
    reseed it (:func:`seed_batch`), the caller's state is not theirs to change."""
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])
