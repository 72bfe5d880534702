"""Redis backend: one cache shared by several judge-server replicas.

``redis`` is an optional dependency (``pip install 'judge-server[redis]'``), imported only when
this backend is built.

Bounds: ``ttl_s`` sets each entry's expiry (``SET PX``). ``max_entries`` keeps a sorted set of
keys by write time beside the values (``<prefix>@index``); every write adds to it and reads its
size in the same round trip, and a write that finds it over the bound removes the oldest batch
(``EVICT_FRACTION`` of the bound). Replicas sharing the Redis share the index, so the bound is
for all of them; two replicas evicting at the same moment may each remove a batch. The index
counts entries, not bytes: Redis's own ``maxmemory`` (with ``allkeys-lru``) remains the real
bound on memory, and an entry Redis evicts that way simply leaves a stale index member.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from judge_server.cache.base import EVICT_FRACTION, CachedResult, CacheError, ResultCache

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "judge:"
#: Index members of expired entries are dropped at most this often.
_PURGE_EVERY_S = 60.0
#: Keys per DEL command when evicting a batch.
_DEL_CHUNK = 1000


class RedisCache(ResultCache):
    """Values are the JSON of ``CachedResult`` under ``prefix + key``.

    ``client`` injects an existing ``redis.asyncio``-compatible client (tests pass fakeredis);
    the cache closes only a client it created itself.
    """

    tier = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: float | None = None,
        max_entries: int | None = None,
        timeout_s: float = 2.0,
        client: Any = None,
    ) -> None:
        super().__init__()
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive or None, got {ttl_s}")
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be >= 1 or None, got {max_entries}")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.index = prefix + "@index"  # '@' never occurs in a hex key
        self._count: int | None = None
        self._last_purge = -math.inf
        try:
            import redis.exceptions
        except ImportError as exc:
            raise CacheError(
                "the redis cache backend needs the redis package: pip install 'judge-server[redis]'"
            ) from exc
        self.prefix = prefix
        self.ttl_ms = None if ttl_s is None else max(1, round(ttl_s * 1000))
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._owns_client = client is None
        if client is None:
            if url is None:
                raise ValueError("RedisCache needs a url or a client")
            import redis.asyncio

            # Short timeouts: a slow cache must not hold a judgment hostage.
            client = redis.asyncio.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        self._client: Any = client
        self._closed = False

    async def get(self, key: str) -> CachedResult | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
        """One ``MGET`` for all of ``keys``."""
        self._check_open()
        if not keys:
            return []
        try:
            raws = await self._client.mget([self.prefix + key for key in keys])
        except self._errors as exc:
            raise CacheError(f"redis get failed: {exc}") from exc
        return [self._decode(key, raw) for key, raw in zip(keys, raws, strict=True)]

    def entries(self) -> int | None:
        """The index's size at this replica's last write (None without ``max_entries``)."""
        return self._count

    async def put(self, key: str, value: CachedResult) -> None:
        await self.put_many([(key, value)])

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        """Every entry in one pipelined round trip (and the eviction, when due, in one more)."""
        self._check_open()
        if not entries:
            return
        rows = [(key, value.to_json()) for key, value in entries]
        try:
            if self.max_entries is None:
                pipe = self._client.pipeline(transaction=False)
                for key, text in rows:
                    pipe.set(self.prefix + key, text, px=self.ttl_ms)
                await pipe.execute()
            else:
                await self._put_indexed(rows, self.max_entries)
        except self._errors as exc:
            raise CacheError(f"redis set failed: {exc}") from exc
        self.stats.puts += len(rows)

    async def _put_indexed(self, rows: Sequence[tuple[str, str]], max_entries: int) -> None:
        now = time.time()
        purge = self.ttl_s is not None and now - self._last_purge >= min(_PURGE_EVERY_S, self.ttl_s)
        pipe = self._client.pipeline(transaction=True)
        for key, text in rows:
            pipe.set(self.prefix + key, text, px=self.ttl_ms)
        pipe.zadd(self.index, {key: now for key, _text in rows})
        if purge and self.ttl_s is not None:
            pipe.zremrangebyscore(self.index, "-inf", f"({now - self.ttl_s}")
        pipe.zcard(self.index)
        replies = await pipe.execute()
        if purge:
            self._last_purge = now
            self.stats.expired += int(replies[len(rows) + 1])
        count = int(replies[-1])
        if count > max_entries:
            batch = max(1, int(max_entries * EVICT_FRACTION))
            oldest = await self._client.zpopmin(self.index, count - max_entries + batch - 1)
            keys = [self.prefix + _text(member) for member, _score in oldest]
            for start in range(0, len(keys), _DEL_CHUNK):
                await self._client.delete(*keys[start : start + _DEL_CHUNK])
            self.stats.evictions += len(keys)
            count -= len(keys)
        self._count = count

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise CacheError("redis result cache is closed")


def _text(member: str | bytes) -> str:
    return member.decode() if isinstance(member, bytes) else member
