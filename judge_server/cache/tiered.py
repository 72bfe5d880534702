"""Memory LRU in front of a persistent or shared backend.

A cache never fails a judgment: a backend that cannot be read is a miss, one that cannot be
written is skipped; both are logged (at most every few seconds) and counted in ``stats.errors``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from judge_server.cache.base import CachedResult, ResultCache
from judge_server.cache.memory import MemoryCache

log = logging.getLogger(__name__)

_LOG_EVERY_S = 30.0


class TieredCache(ResultCache):
    """``get``: memory, then the backend (a backend hit is promoted into memory).
    ``put``: both tiers."""

    def __init__(self, front: MemoryCache, back: ResultCache | None = None) -> None:
        super().__init__()
        self.front = front
        self.back = back
        self._last_logged = -_LOG_EVERY_S

    def layers(self) -> list[ResultCache]:
        return [*self.front.layers(), *(self.back.layers() if self.back is not None else [])]

    async def get(self, key: str) -> CachedResult | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
        """Memory first; what it lacks in one batched read of the backend."""
        values = await self.front.get_many(keys)
        missing = [i for i, value in enumerate(values) if value is None]
        if missing and self.back is not None:
            try:
                found = await self.back.get_many([keys[i] for i in missing])
            except Exception as exc:
                self._backend_failed("read", exc)
                found = [None] * len(missing)
            promoted = []
            for i, value in zip(missing, found, strict=True):
                if value is not None:
                    values[i] = value
                    promoted.append((keys[i], value))
            await self.front.put_many(promoted)
        hits = sum(value is not None for value in values)
        self.stats.hits += hits
        self.stats.misses += len(values) - hits
        return values

    async def put(self, key: str, value: CachedResult) -> None:
        await self.put_many([(key, value)])

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        await self.front.put_many(entries)
        await self.persist_many(entries)

    async def remember_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        await self.front.put_many(entries)

    async def persist_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        """The backend's share of ``put_many``: one batch."""
        if self.back is not None and entries:
            try:
                await self.back.put_many(entries)
            except Exception as exc:
                self._backend_failed("write", exc)
        self.stats.puts += len(entries)

    async def close(self) -> None:
        await self.front.close()
        if self.back is not None:
            await self.back.close()

    def _backend_failed(self, what: str, exc: Exception) -> None:
        self.stats.errors += 1
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY_S:
            self._last_logged = now
            log.warning(
                "result cache %s failed (%d failures so far), serving without it: %s: %s",
                what,
                self.stats.errors,
                type(exc).__name__,
                exc,
            )
