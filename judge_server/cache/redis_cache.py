"""Redis backend: one cache shared by several judge-server replicas.

``redis`` is an optional dependency (``pip install 'judge-server[redis]'``), imported only when
this backend is built. Bound its size on the Redis side (``maxmemory`` with an ``allkeys-lru``
policy) and/or give entries a TTL here.
"""

from __future__ import annotations

import logging
from typing import Any

from judge_server.cache.base import CachedResult, CacheError, ResultCache

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "judge:"


class RedisCache(ResultCache):
    """Values are the JSON of ``CachedResult`` under ``prefix + key``.

    ``client`` injects an existing ``redis.asyncio``-compatible client (tests pass fakeredis);
    the cache closes only a client it created itself.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: float | None = None,
        timeout_s: float = 2.0,
        client: Any = None,
    ) -> None:
        super().__init__()
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive or None, got {ttl_s}")
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
        self._check_open()
        try:
            raw = await self._client.get(self.prefix + key)
        except self._errors as exc:
            raise CacheError(f"redis get failed: {exc}") from exc
        return self._decode(key, raw)

    async def put(self, key: str, value: CachedResult) -> None:
        self._check_open()
        try:
            await self._client.set(self.prefix + key, value.to_json(), px=self.ttl_ms)
        except self._errors as exc:
            raise CacheError(f"redis set failed: {exc}") from exc
        self.stats.puts += 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise CacheError("redis result cache is closed")
