"""Backpressure: a bound on items admitted and not yet answered.

A request that would push the count past the bound is refused whole (429 with Retry-After)
before any work starts, so an overloaded server answers quickly instead of queueing without
limit and timing everything out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class QueueFullError(Exception):
    def __init__(self, requested: int, in_flight: int, limit: int) -> None:
        super().__init__(
            f"server is at capacity ({in_flight} items in flight, limit {limit}); "
            f"cannot admit {requested} more, retry later"
        )


class Admission:
    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self.in_flight = 0

    @contextmanager
    def admit(self, n: int) -> Iterator[None]:
        # Single-threaded event loop: check-and-add needs no lock.
        if self.in_flight + n > self.max_items and self.in_flight > 0:
            raise QueueFullError(n, self.in_flight, self.max_items)
        self.in_flight += n
        try:
            yield
        finally:
            self.in_flight -= n
