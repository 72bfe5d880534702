"""Result cache and in-flight dedup.

- ``cache_key`` / ``item_fingerprint``: what makes two judge calls the same call.
- ``ResultCache`` backends: ``MemoryCache`` (LRU), ``SQLiteCache`` (persistent, default),
  ``RedisCache`` (shared by replicas), ``TieredCache`` (memory in front of either).
- ``InFlight``: identical calls running at once are computed once.

Only ``ok`` results are cached; a failure is always recomputed (see ``base``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from judge_server.cache.base import CachedResult, CacheError, CacheStats, ResultCache
from judge_server.cache.inflight import InFlight, InFlightStats
from judge_server.cache.keys import (
    CACHE_SCHEMA_VERSION,
    SCORING_LOGIC_VERSION,
    KeyMaker,
    cache_key,
    item_fingerprint,
)
from judge_server.cache.memory import DEFAULT_MEMORY_ENTRIES, MemoryCache
from judge_server.cache.sqlite import SQLiteCache
from judge_server.cache.tiered import TieredCache

__all__ = [
    "CACHE_SCHEMA_VERSION",
    "DEFAULT_MEMORY_ENTRIES",
    "DEFAULT_SQLITE_FILENAME",
    "SCORING_LOGIC_VERSION",
    "CacheBackend",
    "CacheError",
    "CacheStats",
    "CachedResult",
    "InFlight",
    "InFlightStats",
    "KeyMaker",
    "MemoryCache",
    "ResultCache",
    "SQLiteCache",
    "TieredCache",
    "build_cache",
    "cache_key",
    "item_fingerprint",
]

CacheBackend = Literal["memory", "sqlite", "redis", "none"]

#: The database file's name when ``build_cache`` is given a directory.
DEFAULT_SQLITE_FILENAME = "results.sqlite3"


def build_cache(
    backend: CacheBackend,
    *,
    path: Path | None = None,
    redis_url: str | None = None,
    memory_entries: int = DEFAULT_MEMORY_ENTRIES,
    max_entries: int | None = None,
    ttl_s: float | None = None,
) -> ResultCache | None:
    """The configured cache, or None for ``"none"``.

    ``sqlite`` and ``redis`` get the memory LRU in front (``TieredCache``). ``path`` is the
    SQLite file, or a directory to hold ``results.sqlite3``; ``max_entries`` and ``ttl_s`` bound
    the SQLite file or the Redis entries.
    """
    return _build(backend, path, redis_url, memory_entries, max_entries, ttl_s)


def _build(
    backend: CacheBackend,
    path: Path | None,
    redis_url: str | None,
    memory_entries: int,
    max_entries: int | None,
    ttl_s: float | None,
) -> ResultCache | None:
    if backend == "none":
        return None
    front = MemoryCache(memory_entries, ttl_s=ttl_s)
    if backend == "memory":
        return front
    if backend == "sqlite":
        if path is None:
            raise ValueError("the sqlite cache needs a path")
        if path.is_dir():
            path = path / DEFAULT_SQLITE_FILENAME
        back = SQLiteCache(path, max_entries=max_entries, ttl_s=ttl_s)
        return TieredCache(front, back)
    if backend == "redis":
        if not redis_url:
            raise ValueError("the redis cache needs a redis_url")
        from judge_server.cache.redis_cache import RedisCache

        shared = RedisCache(redis_url, ttl_s=ttl_s, max_entries=max_entries)
        return TieredCache(front, shared)
    raise ValueError(f"unknown cache backend {backend!r}")
