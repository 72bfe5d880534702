"""Backpressure: a bound on engine calls admitted and not yet answered.

A request is weighed by what it costs the engine (``service.cost``), not by its item count: five
items of a 3,000-criterion rubric are 15,000 calls. A request that would push the count past the
bound is refused whole (429 with Retry-After) before any work starts, so an overloaded server
answers quickly instead of queueing without limit and timing everything out. Items are counted
too, for the queue gauge and for draining.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class QueueFullError(Exception):
    def __init__(self, requested: int, in_flight: int, limit: int) -> None:
        super().__init__(
            f"server is at capacity ({in_flight} engine calls in flight, limit {limit} "
            f"(JUDGE_MAX_QUEUE_ENGINE_CALLS)); cannot admit {requested} more, retry later"
        )


class Admission:
    def __init__(self, max_calls: int) -> None:
        self.max_calls = max_calls
        self.in_flight = 0
        """Items admitted and not yet answered."""
        self.calls_in_flight = 0
        """Their engine calls (an upper bound each)."""

    @contextmanager
    def admit(self, items: int, calls: int) -> Iterator[None]:
        # Single-threaded event loop: check-and-add needs no lock. An idle server admits any
        # request (its size is bounded per request), so a big one is never starved.
        if self.calls_in_flight + calls > self.max_calls and self.calls_in_flight > 0:
            raise QueueFullError(calls, self.calls_in_flight, self.max_calls)
        self.in_flight += items
        self.calls_in_flight += calls
        try:
            yield
        finally:
            self.in_flight -= items
            self.calls_in_flight -= calls
