"""The per-request cache API (``get_many`` / ``put_many``) on every backend, and the scorer
using it: one read and one write per request, the same keys and results as one item at a time.

SQLite runs on a real file; Redis on fakeredis and on a real redis-server
(``tests/redis_server.py``), where the server's own command counts prove the round trips.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from judge_server.cache import (
    CACHE_SCHEMA_VERSION,
    SCORING_LOGIC_VERSION,
    CachedResult,
    KeyMaker,
    MemoryCache,
    ResultCache,
    SQLiteCache,
    TieredCache,
    cache_key,
    item_fingerprint,
)
from judge_server.cache import sqlite as sqlite_module
from judge_server.cli.bench.instant_engine import InstantEngine
from judge_server.cli.bench.workload import pointwise_rubric, short_items
from judge_server.judges import judge_for
from judge_server.service.scoring import Scorer


def result(reward: float) -> CachedResult:
    return CachedResult(reward, {"p": reward, "rows": [{"id": "a", "p": reward}]})


def entries(n: int, start: int = 0) -> list[tuple[str, CachedResult]]:
    return [(f"k{i}", result(i / 10_000)) for i in range(start, start + n)]


# ------------------------------------------------------------------------------------- keys


def reference_key(**parts: Any) -> str:
    """The key as ``cache_key`` has always computed it: one canonical JSON of everything."""
    payload = {
        "schema": CACHE_SCHEMA_VERSION,
        "scoring": SCORING_LOGIC_VERSION,
        "model": parts["model_id"],
        "models": dict(parts["models"]),
        "engine": dict(parts["engine_fingerprint"]),
        "rubric_version": parts["rubric_version"],
        "mode": parts["mode"],
        "item": dict(parts["item"]),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "item",
    [
        item_fingerprint("What is 2+2?", "4", "four", {"lang": "en"}),
        item_fingerprint([{"role": "user", "content": 'é\x00"item":'}], "🙂", None, None),
        {**item_fingerprint("p", "r", None, {"z": [1e16, 0.1, True, None]}), "criteria": []},
    ],
)
def test_key_maker_gives_cache_keys_byte_for_byte(item: dict[str, object]) -> None:
    shared = {
        "model_id": "judge-é",
        # Parts that hold the text of the item's slot cannot move it.
        "models": {"judge": "sha256:1", "item": '"item":"x"'},
        "engine_fingerprint": {"dtype": "float32", "item": {"item": 1}},
        "rubric_version": "v1",
        "mode": "pointwise",
    }
    maker = KeyMaker(**shared)  # type: ignore[arg-type]
    assert maker.key(item) == cache_key(**shared, item=item) == reference_key(**shared, item=item)
    assert maker.key(item) == maker.key(dict(reversed(list(item.items()))))
    with pytest.raises(TypeError):
        maker.key({"prompt": object()})


# ----------------------------------------------------------------------------------- sqlite


async def test_sqlite_batches_are_one_trip_and_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    trips = 0
    with_conn = cache._with_conn

    def counted(fn: Any) -> Any:
        nonlocal trips
        trips += 1
        return with_conn(fn)

    monkeypatch.setattr(cache, "_with_conn", counted)
    # More keys than one SELECT takes, so the read goes in chunks.
    written = entries(sqlite_module._KEYS_PER_SELECT * 2 + 7)
    await cache.put_many(written)
    assert trips == 1
    keys = ["missing", *(k for k, _ in written), "k3"]
    found = await cache.get_many(keys)
    assert trips == 2
    assert found == [None, *(v for _, v in written), written[3][1]]
    assert (cache.stats.puts, cache.stats.hits, cache.stats.misses) == (
        len(written),
        len(keys) - 1,
        1,
    )
    assert cache.entries() == len(written)
    # Rewriting keys in a batch counts each row once.
    await cache.put_many([("k1", result(0.9)), ("k1", result(0.8)), ("new", result(0.7))])
    assert cache.entries() == len(written) + 1
    assert await cache.get_many(["k1", "new"]) == [result(0.8), result(0.7)]
    assert await cache.get_many([]) == []
    await cache.close()
    # Another process reading the file sees every row.
    reopened = SQLiteCache(tmp_path / "c.sqlite3")
    assert reopened.entries() == len(written) + 1
    await reopened.close()


async def test_sqlite_batch_write_evicts_to_the_bound_once(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3", max_entries=100)
    await cache.put_many(entries(90))
    await cache.put_many(entries(30, start=90))  # 120 rows: over the bound within one batch
    assert cache.entries() <= 100
    assert cache.stats.evictions >= 20
    found = await cache.get_many([k for k, _ in entries(120)])
    assert found[0] is None and found[-1] == result(119 / 10_000)  # the oldest went first
    await cache.close()


async def test_sqlite_unreadable_rows_are_misses_in_a_batch(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    await cache.put_many(entries(2))
    await cache._call(
        lambda conn: conn.execute("UPDATE results SET value = 'not json' WHERE key = 'k0'")
    )
    assert await cache.get_many(["k0", "k1"]) == [None, entries(2)[1][1]]
    assert cache.stats.errors == 1
    await cache.close()


# ------------------------------------------------------------------------------------ redis


async def test_redis_batches_round_trip_in_order(redis_client: Any) -> None:
    from judge_server.cache.redis_cache import RedisCache

    cache = RedisCache(client=redis_client)
    written = entries(50)
    await cache.put_many(written)
    await redis_client.set("judge:bad", b"\xff not json")
    keys = ["absent", *(k for k, _ in written), "bad", "k7"]
    assert await cache.get_many(keys) == [None, *(v for _, v in written), None, written[7][1]]
    assert (cache.stats.puts, cache.stats.errors) == (50, 1)
    assert await cache.get_many([]) == []
    # The bounded layout: one index entry per key, trimmed to the bound.
    bounded = RedisCache(client=redis_client, prefix="b:", max_entries=40)
    await bounded.put_many(entries(45))
    assert (bounded.entries() or 0) <= 40
    assert bounded.stats.evictions >= 5
    assert await redis_client.zcard("b:@index") == bounded.entries()
    assert (await bounded.get_many(["k0", "k44"]))[1] == result(44 / 10_000)


async def test_redis_batch_is_one_command_each_way_on_a_real_server(redis_url: str) -> None:
    import redis.asyncio

    from judge_server.cache.redis_cache import RedisCache

    client = redis.asyncio.Redis.from_url(redis_url)
    cache = RedisCache(client=client, ttl_s=60)
    await client.config_resetstat()
    await cache.put_many(entries(64))
    assert len(await cache.get_many([k for k, _ in entries(64)])) == 64
    stats = await client.info("commandstats")
    # One pipelined batch of SETs (one round trip) and one MGET; no GET per key.
    assert stats["cmdstat_mget"]["calls"] == 1
    assert stats["cmdstat_set"]["calls"] == 64
    assert "cmdstat_get" not in stats
    assert 0 < await client.pttl("judge:k5") <= 60_000
    await client.aclose()


# ----------------------------------------------------------------------------------- tiered


class Recording(MemoryCache):
    """A backend that records its batches, or fails them."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.reads: list[list[str]] = []
        self.writes: list[list[str]] = []

    async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
        self.reads.append(list(keys))
        if self.fail:
            raise OSError("backend down")
        return await super().get_many(keys)

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        self.writes.append([k for k, _ in entries])
        if self.fail:
            raise OSError("backend down")
        await super().put_many(entries)


async def test_tiered_reads_the_backend_once_for_what_memory_lacks() -> None:
    back = Recording()
    cache = TieredCache(MemoryCache(10), back)
    await cache.put_many([("a", result(0.1))])
    await back.put_many([("b", result(0.2))])  # only in the backend (another replica wrote it)
    assert await cache.get_many(["a", "b", "c"]) == [result(0.1), result(0.2), None]
    assert back.reads == [["b", "c"]]
    assert "b" in cache.front  # promoted
    assert await cache.get_many(["b"]) == [result(0.2)] and back.reads == [["b", "c"]]
    assert (cache.stats.hits, cache.stats.misses) == (3, 1)


async def test_tiered_serves_misses_and_memory_when_the_backend_fails() -> None:
    cache = TieredCache(MemoryCache(10), Recording(fail=True))
    await cache.put_many([("a", result(0.1))])  # memory keeps it; the failed write is counted
    assert await cache.get_many(["a", "b"]) == [result(0.1), None]
    assert cache.stats.errors == 2


# ----------------------------------------------------------------------------------- scorer


class Spy(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
        self.calls.append(("get_many", len(keys)))
        return await super().get_many(keys)

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        self.calls.append(("put_many", len(entries)))
        await super().put_many(entries)


async def test_a_request_reads_and_writes_the_backend_once() -> None:
    back = Spy()
    cache = TieredCache(MemoryCache(100), back)
    scorer = Scorer(InstantEngine(), cache=cache)
    judge = judge_for(pointwise_rubric())
    items = short_items(8, 0)
    items = [*items, items[0]]  # an identical item: judged once, written once
    first = await scorer.score(judge, items, timeout_s=5)
    assert back.calls == [("get_many", 9), ("put_many", 8)]
    assert [r.status for r in first] == ["ok"] * 9 and not any(r.cached for r in first)
    again = await scorer.score(judge, items, timeout_s=5)
    assert back.calls[2:] == []  # memory has them all; nothing new to write
    assert all(r.cached for r in again)
    assert [(r.id, r.reward, r.details) for r in again] == [
        (r.id, r.reward, r.details) for r in first
    ]
    # The keys are the one-item keys.
    assert scorer.key(judge, items[3]) in back and scorer.key(judge, items[3]) in cache.front
    assert len(back) == len(cache.front) == 8
    # A memory cache alone is the memory tier: each result written as judged, no batch.
    alone = Spy()
    await Scorer(InstantEngine(), cache=alone).score(judge, items, timeout_s=5)
    assert alone.calls == [("get_many", 9)] and len(alone) == 8


async def test_a_cache_that_fails_a_batch_fails_no_judgment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(ResultCache):  # a bare backend: no tier in front takes its failures
        async def get(self, key: str) -> CachedResult | None:
            return None

        async def put(self, key: str, value: CachedResult) -> None:
            raise OSError("disk full")

        async def close(self) -> None: ...

    scorer = Scorer(InstantEngine(), cache=Broken())
    results = await scorer.score(judge_for(pointwise_rubric()), short_items(3, 0), timeout_s=5)
    assert [r.status for r in results] == ["ok"] * 3
    assert "result cache write failed" in caplog.text


async def test_a_cache_that_cannot_be_read_fails_no_item(caplog: pytest.LogCaptureFixture) -> None:
    class Unreadable(ResultCache):
        def __init__(self) -> None:
            super().__init__()
            self.written: list[str] = []

        async def get(self, key: str) -> CachedResult | None:
            raise OSError("closed")

        async def put(self, key: str, value: CachedResult) -> None:
            self.written.append(key)

        async def close(self) -> None: ...

    cache = Unreadable()
    scorer = Scorer(InstantEngine(), cache=cache)
    results = await scorer.score(judge_for(pointwise_rubric()), short_items(2, 0), timeout_s=5)
    # All misses: judged, and written as ever.
    assert [r.status for r in results] == ["ok"] * 2
    assert all(r.reward is not None and not r.cached for r in results)
    assert cache.stats.errors == 1 and len(cache.written) == 2
    assert "result cache read failed" in caplog.text
