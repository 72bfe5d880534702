"""In-flight dedup: identical judge calls running at once are computed once and fanned out.

The computation runs in its own task; every caller awaits it through ``asyncio.wait``, which
never cancels what it waits for, so one caller going away (a client disconnect, a per-item
timeout) never cancels it for the others. When
the last caller goes away the task is cancelled, so engine work nobody waits for stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")


@dataclass
class _Entry:
    task: asyncio.Task[Any]
    waiters: int = 0


@dataclass
class InFlightStats:
    started: int = 0
    shared: int = 0


class InFlight:
    """Key -> the running computation. A finished one (result or error) leaves at once:
    remembering results is the result cache's job, and a failure must be recomputed."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self.stats = InFlightStats()

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, key: str, factory: Callable[[], Awaitable[T]], timeout_s: float | None = None
    ) -> tuple[T, bool]:
        """Await ``factory()``, or the identical computation already running under ``key``.

        Returns the result and whether it was shared (True: another caller started it).
        The computation's exception reaches every caller. Past ``timeout_s`` this caller gets
        ``TimeoutError`` (a result that is ready by the time it looks is still taken).
        """
        entry = self._entries.get(key)
        shared = entry is not None and not entry.task.done()
        if entry is None or not shared:
            entry = self._start(key, factory)
        else:
            self.stats.shared += 1
        entry.waiters += 1
        try:
            # asyncio.wait never cancels what it waits for (like shield), and its deadline
            # costs a timer, not a task of its own as wait_for's does on Python 3.11.
            done, _ = await asyncio.wait((entry.task,), timeout=timeout_s)
            if not done:
                raise TimeoutError
            return cast(T, entry.task.result()), shared
        finally:
            entry.waiters -= 1
            if entry.waiters == 0 and not entry.task.done():
                # Every caller is gone (only cancellation gets here with the task running).
                entry.task.cancel()
                self._forget(key, entry)

    def _start(self, key: str, factory: Callable[[], Awaitable[T]]) -> _Entry:
        # factory() is called inside the task: a task cancelled before it starts then leaves
        # no never-awaited coroutine behind.
        entry = _Entry(asyncio.create_task(_call(factory)))
        self._entries[key] = entry
        self.stats.started += 1
        entry.task.add_done_callback(lambda _task: self._forget(key, entry))
        return entry

    def _forget(self, key: str, entry: _Entry) -> None:
        # A newer computation may already hold the key; leave it alone.
        if self._entries.get(key) is entry:
            del self._entries[key]


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()
