"""What every result cache shares: the cached value, the interface, the counters.

Only ``ok`` results are ever cached. A failure (``invalid_input``, ``judge_error``, ``timeout``)
must be recomputed on the next request, never replayed: an engine hiccup or a timeout under load
says nothing about the item. The API enforces this by shape: a ``CachedResult`` has a finite
``reward: float``, never ``None``, so there is no way to store a failure.
"""

from __future__ import annotations

import abc
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: A full cache evicts this share of its ``max_entries`` at once (at least one entry), so it
#: deletes once per batch of writes rather than on every write.
EVICT_FRACTION = 0.05


class CacheError(RuntimeError):
    """A cache backend could not be read or written (I/O, connection, closed cache)."""


@dataclass(frozen=True)
class CachedResult:
    """The part of an ``ok`` result worth replaying: its reward and its evidence."""

    reward: float
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # bool is an int subclass; a True reward is a bug upstream, not a score.
        if isinstance(self.reward, bool) or not isinstance(self.reward, int | float):
            raise TypeError(f"reward must be a number, got {type(self.reward).__name__}")
        if not math.isfinite(self.reward):
            raise ValueError(f"reward must be finite, got {self.reward}")
        if not isinstance(self.details, dict):
            raise TypeError(f"details must be a dict, got {type(self.details).__name__}")

    def to_json(self) -> str:
        return json.dumps(
            {"reward": self.reward, "details": self.details},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CachedResult:
        """Parse a stored value. Raises ValueError (or TypeError) on anything malformed."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"cached value must be an object, got {type(data).__name__}")
        if "reward" not in data:
            raise ValueError("cached value has no reward")
        return cls(reward=data["reward"], details=data.get("details", {}))


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    puts: int = 0
    #: entries removed to keep the cache within its size bound
    evictions: int = 0
    #: entries removed (or ignored) because they outlived the TTL
    expired: int = 0
    #: backend failures and unreadable values, each served as a miss
    errors: int = 0


class ResultCache(abc.ABC):
    """Key -> ``CachedResult``. Keys come from ``judge_server.cache.keys.cache_key``."""

    #: the storage's name in /metrics (a ``tier`` label)
    tier = "cache"

    def __init__(self) -> None:
        self.stats = CacheStats()

    def entries(self) -> int | None:
        """How many results are stored, if known without I/O (a shared backend may not know)."""
        return None

    def layers(self) -> list[ResultCache]:
        """The caches that store results (a tiered cache's tiers), for /metrics."""
        return [self]

    @abc.abstractmethod
    async def get(self, key: str) -> CachedResult | None:
        """The cached result, or None on a miss (an unreadable value is a miss)."""

    @abc.abstractmethod
    async def put(self, key: str, value: CachedResult) -> None: ...

    async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
        """``get`` of every key, in order; a backend with round trips overrides it with one."""
        return [await self.get(key) for key in keys]

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        """``put`` of every entry, in order; a backend with round trips overrides it with one."""
        for key, value in entries:
            await self.put(key, value)

    async def remember_many(  # noqa: B027 (optional: not every cache has a memory tier)
        self, entries: Sequence[tuple[str, CachedResult]]
    ) -> None:
        """Write to the in-process tier only, at once (what a concurrent request reads next);
        ``persist_many`` writes the same entries onward later, in one batch. A cache with no
        in-process tier remembers nothing."""

    async def persist_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        """Write entries ``remember_many`` already took to the rest of the cache: the shared
        or persistent tier, in one batch. Where there is no in-process tier, ``put_many``."""
        await self.put_many(entries)

    def _decode(self, key: str, raw: str | bytes | None) -> CachedResult | None:
        """A stored value as a result, counting the hit or miss; an unreadable one is a miss."""
        if raw is None:
            self.stats.misses += 1
            return None
        try:
            value = CachedResult.from_json(raw)
        except (ValueError, TypeError) as exc:
            log.warning("unreadable result cache entry %s, treating as a miss: %s", key, exc)
            self.stats.errors += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads. Idempotent."""
