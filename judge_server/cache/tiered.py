"""Memory LRU in front of a persistent or shared backend.

A cache never fails a judgment: a backend that cannot be read is a miss, one that cannot be
written is skipped; both are logged (at most every few seconds) and counted in ``stats.errors``.
"""

from __future__ import annotations

import logging
import time

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
        value = await self.front.get(key)
        if value is None and self.back is not None:
            try:
                value = await self.back.get(key)
            except Exception as exc:
                self._backend_failed("read", exc)
            if value is not None:
                await self.front.put(key, value)
        if value is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return value

    async def put(self, key: str, value: CachedResult) -> None:
        await self.front.put(key, value)
        if self.back is not None:
            try:
                await self.back.put(key, value)
            except Exception as exc:
                self._backend_failed("write", exc)
        self.stats.puts += 1

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
