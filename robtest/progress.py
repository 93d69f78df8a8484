"""Progress of long evaluations: samples done of those planned, the rate and the time left.

The data iterator (:func:`robtest.data.iter_indexed`) reports every batch to the current :func:`task`; the
plugin opens a task around each property evaluation with a sink that writes to the terminal past pytest's
capture. Nothing is shown for an evaluation shorter than ``delay`` seconds, so quick tests stay quiet; on a
terminal the line is rewritten in place (at most ``interval`` apart), elsewhere (CI logs, xdist workers)
a plain line is written at most every ``interval`` seconds. Progress never changes a number.

This module imports only the standard library.

>>> lines = []
>>> clock = iter([0.0, 0.0, 3.0, 6.0, 9.0]).__next__
>>> with task("test_a::accuracy_floor", lines.append, delay=2.0, interval=1.0, live=False, clock=clock):
...     advance(100, 400)
...     advance(100, 400)
...     advance(200, 400)
>>> for line in lines:
...     print(line)
robtest: test_a::accuracy_floor: 200/400 samples, 66.7/s, about 3 s left
robtest: test_a::accuracy_floor: 400/400 samples, 66.7/s
robtest: test_a::accuracy_floor: 400/400 samples, 44.4/s, done in 9 s
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["task", "advance", "Progress"]


class Progress:
    """The state of one evaluation's progress and its output decisions."""

    def __init__(self, label: str, sink: Callable[[str], None], *, delay: float, interval: float, live: bool,
                 clock: Callable[[], float]) -> None:
        self.label, self.sink, self.delay, self.interval, self.live = label, sink, delay, interval, live
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.planned = 0
        self.passes = 0
        self.fixed = False  # inside span(): planned is the span's
        self._last_shown: float | None = None
        self.shown = False

    def _line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        of = f"/{self.planned}" if self.planned else ""
        text = f"robtest: {self.label}: {self.done}{of} samples"
        if self.passes > 1:
            text += f" (pass {self.passes})"
        text += f", {rate:.3g}/s"
        if final:
            return text + f", done in {elapsed:.0f} s"
        if rate > 0 and self.planned > self.done:
            text += f", about {(self.planned - self.done) / rate:.0f} s left"
        return text

    def _new_pass(self, planned: int) -> None:
        if self.done:
            self.passes += 1
            self.done = 0
        self.passes = max(self.passes, 1)
        self.planned = planned

    def start_pass(self, planned: int) -> None:
        """A new pass of ``planned`` samples begins (read in as many stretches as it takes)."""
        self._new_pass(planned)
        self.fixed = True

    def advance(self, k: int, planned: int) -> None:
        # A new pass over the data, unless inside span() (whose stretches add up to the pass it planned).
        if not self.fixed and (self.done == 0 or (self.planned and self.done >= self.planned)):
            self._new_pass(planned)
        self.done += k
        now = self.clock()
        if now - self.started < self.delay:
            return
        if self._last_shown is not None and now - self._last_shown < self.interval:
            return
        self._last_shown = now
        self.shown = True
        self.sink(("\r" if self.live else "") + self._line(now))

    def finish(self) -> None:
        if self.shown:
            now = self.clock()
            self.sink(("\r" if self.live else "") + self._line(now, final=True) + ("\n" if self.live else ""))


_CURRENT: ContextVar[Progress | None] = ContextVar("robtest_progress", default=None)


@contextlib.contextmanager
def task(label: str, sink: Callable[[str], None] | None, *, delay: float = 2.0, interval: float = 30.0,
         live: bool = False, clock: Callable[[], float] = time.monotonic) -> Iterator[Progress | None]:
    """Report the progress of the evaluation inside the block to ``sink`` (None: no progress)."""
    if sink is None:
        yield None
        return
    p = Progress(label, sink, delay=delay, interval=interval, live=live, clock=clock)
    token = _CURRENT.set(p)
    try:
        yield p
    finally:
        _CURRENT.reset(token)
        p.finish()


@contextlib.contextmanager
def span(total: int) -> Iterator[None]:
    """Inside the block, the data reads make one pass of ``total`` samples: for an evaluation that reads its
    samples in stretches (up to each sequential look) or only its share of them (a torchrun rank)."""
    p = _CURRENT.get()
    if p is None:
        yield
        return
    p.start_pass(int(total))
    try:
        yield
    finally:
        p.fixed = False


def advance(k: int, planned: int) -> None:
    """``k`` more samples of ``planned`` were evaluated (called by the data iterator once per batch)."""
    p = _CURRENT.get()
    if p is not None:
        p.advance(k, planned)
