"""In-flight dedup: identical judge calls running at once are computed once and fanned out.

The computation runs in its own task; every caller awaits it through ``asyncio.wait``, which
never cancels what it waits for, so one caller going away (a client disconnect, a per-item
timeout) never cancels it for the others. When
the last caller goes away the task is cancelled, so engine work nobody waits for stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Computation:
    """A running computation and how many callers wait on it (``InFlight.join``)."""

    key: str
    task: asyncio.Task[Any] = field(init=False)
    waiters: int = 0
    # Set by the caller (the scorer): whether the starter caches its result, whether the
    # result's cost was reported and whether it was written to the backend, each once only,
    # by whichever caller takes the result first: the starter may have gone away.
    caching: bool = False
    claimed: bool = False
    stored: bool = False


@dataclass
class InFlightStats:
    started: int = 0
    shared: int = 0


class InFlight:
    """Key -> the running computation. A finished one (result or error) leaves at once:
    remembering results is the result cache's job, and a failure must be recomputed."""

    def __init__(self) -> None:
        self._entries: dict[str, Computation] = {}
        self.stats = InFlightStats()

    def __len__(self) -> int:
        return len(self._entries)

    def join(self, key: str, factory: Callable[[], Awaitable[Any]]) -> tuple[Computation, bool]:
        """Wait on the computation running under ``key``, or start ``factory()`` as one: the
        computation, and whether it was shared. The caller waits on its task as it likes
        (never cancelling it) and must ``leave`` it, whatever happens: many callers, say a
        whole request's items, can then wait in one ``asyncio.wait`` instead of a task each."""
        computation = self._entries.get(key)
        shared = computation is not None and not computation.task.done()
        if computation is None or not shared:
            computation = self._start(key, factory)
        else:
            self.stats.shared += 1
        computation.waiters += 1
        return computation, shared

    def leave(self, computation: Computation) -> None:
        """One caller stopped waiting: the last one to go stops a computation still running."""
        computation.waiters -= 1
        if computation.waiters == 0 and not computation.task.done():
            # Every caller is gone (only cancellation gets here with the task running).
            computation.task.cancel()
            self._forget(computation)

    def cancel_all(self, reason: str) -> None:
        """Stop every running computation (the engine behind them died): each caller sees
        its task cancelled."""
        for computation in list(self._entries.values()):
            computation.task.cancel(reason)
            self._forget(computation)  # one cancelled before it started never forgets itself

    def _start(self, key: str, factory: Callable[[], Awaitable[Any]]) -> Computation:
        # factory() is called inside the task: a task cancelled before it starts then leaves
        # no never-awaited coroutine behind.
        computation = Computation(key)
        computation.task = asyncio.create_task(self._call(computation, factory))
        self._entries[key] = computation
        self.stats.started += 1
        return computation

    async def _call(self, computation: Computation, factory: Callable[[], Awaitable[T]]) -> T:
        try:
            return await factory()
        finally:  # a task cancelled before it started is forgotten by whoever cancelled it
            self._forget(computation)

    def _forget(self, computation: Computation) -> None:
        # A newer computation may already hold the key; leave it alone.
        if self._entries.get(computation.key) is computation:
            del self._entries[computation.key]
