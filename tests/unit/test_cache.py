"""Result cache: keys, backends (memory, SQLite, Redis), tiers, and in-flight dedup."""

from __future__ import annotations

import asyncio
import math
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from judge_server.cache import (
    DEFAULT_SQLITE_FILENAME,
    CachedResult,
    CacheError,
    InFlight,
    MemoryCache,
    ResultCache,
    SQLiteCache,
    TieredCache,
    build_cache,
    cache_key,
    item_fingerprint,
)

# --------------------------------------------------------------------------------------- keys

BASE_ITEM: dict[str, object] = item_fingerprint(
    "What is 2+2?", "4", "four", {"lang": "en", "source": "gsm"}
)
BASE: dict[str, Any] = {
    "model_id": "SmolLM2-135M-Instruct-04da094c9f01",
    "models": {"judge": "sha256:aaa", "reward_models": {"rm": "sha256:bbb"}},
    "engine_fingerprint": {"dtype": "float32", "max_model_len": 2048},
    "rubric_version": "aab8e8b38a0e",
    "mode": "pointwise",
    "item": BASE_ITEM,
}


def key_with(**changes: Any) -> str:
    return cache_key(**{**BASE, **changes})


def test_key_is_a_stable_sha256_hex() -> None:
    key = key_with()
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == key_with()


@pytest.mark.parametrize(
    "changes",
    [
        {"model_id": "Qwen2.5-7B-Instruct"},
        {"models": {"judge": "sha256:ccc", "reward_models": {"rm": "sha256:bbb"}}},
        {"models": {"judge": "sha256:aaa", "reward_models": {"rm": "sha256:ccc"}}},
        {"engine_fingerprint": {"dtype": "bfloat16", "max_model_len": 2048}},
        {"engine_fingerprint": {"dtype": "float32", "max_model_len": 4096}},
        {"engine_fingerprint": {"dtype": "float32"}},
        {"rubric_version": "000000000000"},
        {"mode": "verdict"},
        {"item": item_fingerprint("What is 2+3?", "4", "four", {"lang": "en", "source": "gsm"})},
        {"item": item_fingerprint("What is 2+2?", "5", "four", {"lang": "en", "source": "gsm"})},
        {"item": item_fingerprint("What is 2+2?", "4", "4", {"lang": "en", "source": "gsm"})},
        {"item": item_fingerprint("What is 2+2?", "4", None, {"lang": "en", "source": "gsm"})},
        {"item": item_fingerprint("What is 2+2?", "4", "four", {"lang": "fr", "source": "gsm"})},
        {"item": item_fingerprint("What is 2+2?", "4", "four", {"lang": "en"})},
        {
            "item": item_fingerprint(
                [{"role": "user", "content": "What is 2+2?"}],
                "4",
                "four",
                {"lang": "en", "source": "gsm"},
            )
        },
    ],
    ids=[
        "model",
        "judge-weights",
        "reward-model-weights",
        "dtype",
        "max_model_len",
        "engine-field-dropped",
        "rubric_version",
        "mode",
        "prompt",
        "response",
        "reference",
        "reference-none",
        "metadata-value",
        "metadata-key-dropped",
        "prompt-as-messages",
    ],
)
def test_every_part_of_the_key_changes_it(changes: dict[str, Any]) -> None:
    assert key_with(**changes) != key_with()


def test_message_content_and_role_change_the_key() -> None:
    def key_of(messages: Sequence[Mapping[str, object]]) -> str:
        return key_with(item=item_fingerprint(messages, "4", None, None))

    base = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    assert key_of(base) != key_of([base[0], {"role": "user", "content": "2+3?"}])
    assert key_of(base) != key_of([base[0], {"role": "assistant", "content": "2+2?"}])
    assert key_of(base) != key_of(base[::-1])  # message order matters
    assert key_of(base) != key_of(base[1:])


def test_key_ignores_dict_key_order_everywhere() -> None:
    reordered = cache_key(
        item={
            "metadata": {"source": "gsm", "lang": "en"},
            "reference": "four",
            "response": "4",
            "prompt": "What is 2+2?",
        },
        mode="pointwise",
        rubric_version="aab8e8b38a0e",
        engine_fingerprint={"max_model_len": 2048, "dtype": "float32"},
        models={"reward_models": {"rm": "sha256:bbb"}, "judge": "sha256:aaa"},
        model_id="SmolLM2-135M-Instruct-04da094c9f01",
    )
    assert reordered == key_with()
    forward = item_fingerprint([{"role": "user", "content": "hi"}], "r", None, {})
    backward = item_fingerprint([{"content": "hi", "role": "user"}], "r", None, None)
    assert key_with(item=forward) == key_with(item=backward)


def test_key_keeps_types_and_unicode_apart() -> None:
    def meta(value: object) -> str:
        return key_with(item=item_fingerprint("p", "r", None, {"k": value}))

    assert len({meta(1), meta("1"), meta(1.5), meta(True), meta(None), meta([1])}) == 6
    assert key_with(item=item_fingerprint("café", "r", None, None)) != key_with(
        item=item_fingerprint("cafe", "r", None, None)
    )


def test_key_refuses_values_that_are_not_json() -> None:
    with pytest.raises(TypeError):
        key_with(item=item_fingerprint("p", "r", None, {"k": object()}))


# ------------------------------------------------------------------------------ CachedResult


def test_cached_result_round_trips_through_json() -> None:
    value = CachedResult(0.73, {"distribution": {"1": 0.2, "9": 0.8}, "note": "é{}"})
    assert CachedResult.from_json(value.to_json()) == value
    assert CachedResult.from_json(value.to_json().encode()) == value


@pytest.mark.parametrize("reward", [None, math.nan, math.inf, True, "0.5"])
def test_cached_result_refuses_anything_but_a_finite_reward(reward: Any) -> None:
    # A failure has no reward: it cannot be made into a cached value.
    with pytest.raises((TypeError, ValueError)):
        CachedResult(reward, {})


@pytest.mark.parametrize(
    "text",
    ["", "{", "[1]", "null", '{"details": {}}', '{"reward": null}', '{"reward": 1, "details": 3}'],
)
def test_cached_result_from_malformed_json_raises_value_or_type_error(text: str) -> None:
    with pytest.raises((TypeError, ValueError)):
        CachedResult.from_json(text)


# ------------------------------------------------------------------------------------ memory


def result(reward: float) -> CachedResult:
    return CachedResult(reward, {"r": reward})


async def test_memory_lru_evicts_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for name, reward in [("a", 0.1), ("b", 0.2), ("c", 0.3)]:
        await cache.put(name, result(reward))
    assert await cache.get("a") == result(0.1)  # a is now the most recent
    await cache.put("d", result(0.4))  # evicts b, the least recent
    assert "b" not in cache
    assert await cache.get("b") is None
    await cache.put("c", result(0.33))  # overwrite refreshes c
    await cache.put("e", result(0.5))  # evicts a
    assert [k for k in ("a", "b", "c", "d", "e") if k in cache] == ["c", "d", "e"]
    assert await cache.get("c") == result(0.33)
    assert len(cache) == 3
    assert cache.stats.evictions == 2
    assert (cache.stats.hits, cache.stats.misses, cache.stats.puts) == (2, 1, 6)


async def test_memory_values_are_copies() -> None:
    cache = MemoryCache(max_entries=2)
    value = CachedResult(0.5, {"distribution": {"1": 1.0}})
    await cache.put("k", value)
    value.details["distribution"]["1"] = 0.0
    got = await cache.get("k")
    assert got is not None and got.details == {"distribution": {"1": 1.0}}
    got.details.clear()
    assert await cache.get("k") == CachedResult(0.5, {"distribution": {"1": 1.0}})


async def test_memory_with_zero_entries_stores_nothing() -> None:
    cache = MemoryCache(max_entries=0)
    await cache.put("k", result(0.5))
    assert await cache.get("k") is None
    with pytest.raises(ValueError):
        MemoryCache(max_entries=-1)


# ------------------------------------------------------------------------------------ sqlite


async def test_sqlite_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there" / "cache.sqlite3"
    cache = SQLiteCache(path)
    value = CachedResult(0.73, {"distribution": {"1": 0.25, "9": 0.75}, "text": "日本"})
    await cache.put("k1", value)
    await cache.close()
    await cache.close()  # idempotent
    assert path.is_file()

    reopened = SQLiteCache(path)
    try:
        assert await reopened.get("k1") == value
        assert await reopened.get("k2") is None
        assert (reopened.stats.hits, reopened.stats.misses) == (1, 1)
    finally:
        await reopened.close()


async def test_sqlite_uses_wal_and_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    try:
        mode = await cache._call(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0])
        thread = await cache._call(lambda _conn: threading.current_thread())
        assert mode == "wal"
        assert thread is not threading.main_thread()
        assert thread.name.startswith("judge-cache-sqlite")
    finally:
        await cache.close()


@pytest.mark.parametrize(
    "stored",
    ["not json", '{"reward": null, "details": {}}', "[0.5]", '{"reward": 0.5, "details": []}'],
)
async def test_sqlite_unreadable_row_is_a_miss_and_gets_rewritten(
    tmp_path: Path, stored: str
) -> None:
    path = tmp_path / "c.sqlite3"
    cache = SQLiteCache(path)
    try:
        with sqlite3.connect(path) as conn:  # another writer corrupts the row
            conn.execute("INSERT INTO results VALUES (?, ?, ?)", ("k", stored, time.time()))
        conn.close()
        assert await cache.get("k") is None
        assert cache.stats.misses == 1 and cache.stats.errors == 1
        await cache.put("k", result(0.5))
        assert await cache.get("k") == result(0.5)
    finally:
        await cache.close()


async def test_sqlite_max_entries_evicts_oldest_writes(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3", max_entries=3)
    try:
        for i in range(5):
            await cache.put(f"k{i}", result(i / 10))
        await cache.put("k3", result(0.33))  # overwriting does not grow the table...
        assert [await cache.get(f"k{i}") is not None for i in range(5)] == [
            False,
            False,
            True,
            True,
            True,
        ]
        await cache.put("k5", result(0.5))  # ...and makes k3 the newest: k2 goes
        assert await cache.get("k2") is None
        assert await cache.get("k3") == result(0.33)
        assert cache.stats.evictions == 3
        count = await cache._call(
            lambda conn: conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        )
        assert count == 3
    finally:
        await cache.close()


async def test_sqlite_max_entries_holds_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = SQLiteCache(path)
    for i in range(4):
        await cache.put(f"k{i}", result(0.1))
    await cache.close()
    bounded = SQLiteCache(path, max_entries=2)
    try:
        await bounded.put("new", result(0.9))
        present = [k for k in ("k0", "k1", "k2", "k3", "new") if await bounded.get(k)]
        assert present == ["k3", "new"]
    finally:
        await bounded.close()


async def test_sqlite_concurrent_use(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    try:
        await asyncio.gather(*(cache.put(f"k{i}", result(i / 100)) for i in range(50)))
        got = await asyncio.gather(*(cache.get(f"k{i}") for i in range(50)))
        assert got == [result(i / 100) for i in range(50)]
    finally:
        await cache.close()


async def test_sqlite_closed_or_unopenable_raises_cache_error(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    await cache.close()
    with pytest.raises(CacheError):
        await cache.put("k", result(0.5))
    with pytest.raises(CacheError):
        await cache.get("k")
    (tmp_path / "garbage.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError):
        SQLiteCache(tmp_path / "garbage.sqlite3")
    with pytest.raises(CacheError):
        SQLiteCache(tmp_path)  # a directory


# ------------------------------------------------------------------------------------ tiered


class FailingCache(ResultCache):
    async def get(self, key: str) -> CachedResult | None:
        raise CacheError("backend down")

    async def put(self, key: str, value: CachedResult) -> None:
        raise CacheError("backend down")

    async def close(self) -> None:
        pass


async def test_tiered_promotes_backend_hits_into_memory(tmp_path: Path) -> None:
    back = SQLiteCache(tmp_path / "c.sqlite3")
    await back.put("k", result(0.7))
    cache = TieredCache(MemoryCache(10), back)
    try:
        assert "k" not in cache.front
        assert await cache.get("k") == result(0.7)
        assert "k" in cache.front
        assert await cache.get("k") == result(0.7)
        assert back.stats.hits == 1  # the second hit never reached the backend
        assert await cache.get("missing") is None
        assert (cache.stats.hits, cache.stats.misses) == (2, 1)
    finally:
        await cache.close()


async def test_tiered_put_writes_both_tiers_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = TieredCache(MemoryCache(10), SQLiteCache(path))
    await cache.put("k", result(0.4))
    assert "k" in cache.front
    await cache.close()
    restarted = TieredCache(MemoryCache(10), SQLiteCache(path))
    try:
        assert await restarted.get("k") == result(0.4)
    finally:
        await restarted.close()


async def test_tiered_front_eviction_falls_back_to_the_backend(tmp_path: Path) -> None:
    cache = TieredCache(MemoryCache(1), SQLiteCache(tmp_path / "c.sqlite3"))
    try:
        await cache.put("a", result(0.1))
        await cache.put("b", result(0.2))
        assert "a" not in cache.front
        assert await cache.get("a") == result(0.1)
    finally:
        await cache.close()


async def test_tiered_backend_failure_is_a_miss_never_an_error() -> None:
    cache = TieredCache(MemoryCache(10), FailingCache())
    assert await cache.get("k") is None
    await cache.put("k", result(0.5))  # still lands in memory
    assert await cache.get("k") == result(0.5)
    assert cache.stats.errors == 2
    await cache.close()


async def test_tiered_without_backend_is_just_memory() -> None:
    cache = TieredCache(MemoryCache(10))
    await cache.put("k", result(0.5))
    assert await cache.get("k") == result(0.5)
    await cache.close()


# ------------------------------------------------------------------------------------- redis


async def test_redis_round_trip_under_prefix(redis_client: Any) -> None:
    from judge_server.cache.redis_cache import RedisCache

    cache = RedisCache(client=redis_client)
    value = CachedResult(0.61, {"p_yes": 0.61, "text": "ü"})
    assert await cache.get("k") is None
    await cache.put("k", value)
    assert await redis_client.exists("judge:k") == 1
    assert await redis_client.pttl("judge:k") == -1  # no TTL unless asked
    assert await cache.get("k") == value
    # Another replica sharing the same Redis sees it.
    assert await RedisCache(client=redis_client).get("k") == value
    assert (cache.stats.hits, cache.stats.misses, cache.stats.puts) == (1, 1, 1)
    await cache.close()
    with pytest.raises(CacheError):
        await cache.get("k")
    assert await redis_client.ping()  # an injected client stays open


async def test_redis_ttl_and_custom_prefix(redis_client: Any) -> None:
    from judge_server.cache.redis_cache import RedisCache

    cache = RedisCache(client=redis_client, prefix="t:", ttl_s=60)
    await cache.put("k", result(0.5))
    assert 0 < await redis_client.pttl("t:k") <= 60_000
    with pytest.raises(ValueError):
        RedisCache(client=redis_client, ttl_s=0)


async def test_redis_unreadable_value_is_a_miss(redis_client: Any) -> None:
    from judge_server.cache.redis_cache import RedisCache

    cache = RedisCache(client=redis_client)
    await redis_client.set("judge:k", b"\xff\xfe not json")
    assert await cache.get("k") is None
    assert cache.stats.errors == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_redis_unreachable_raises_cache_error_and_tiered_serves_a_miss() -> None:
    pytest.importorskip("redis")
    from judge_server.cache.redis_cache import RedisCache

    url = f"redis://127.0.0.1:{free_port()}/0"
    cache = RedisCache(url, timeout_s=0.5)
    with pytest.raises(CacheError):
        await cache.get("k")
    with pytest.raises(CacheError):
        await cache.put("k", result(0.5))
    await cache.close()
    tiered = build_cache("redis", redis_url=url, memory_entries=10)
    assert isinstance(tiered, TieredCache)
    assert await tiered.get("k") is None
    await tiered.put("k", result(0.5))
    assert await tiered.get("k") == result(0.5)
    await tiered.close()


async def test_redis_against_a_real_server_shared_by_two_replicas(redis_url: str) -> None:
    one = build_cache("redis", redis_url=redis_url, memory_entries=10)
    two = build_cache("redis", redis_url=redis_url, memory_entries=10, ttl_s=0.3)
    assert isinstance(one, TieredCache) and isinstance(two, TieredCache)
    try:
        await one.put("shared", result(0.8))
        assert await two.get("shared") == result(0.8)  # through Redis, promoted on two
        await two.put("brief", result(0.1))
        assert await one.get("brief") == result(0.1)
        await asyncio.sleep(0.5)
        await one.front.close()  # forget the local copy; Redis expired its own
        assert await one.get("brief") is None
        assert await one.get("shared") == result(0.8)
    finally:
        await one.close()
        await two.close()


# ---------------------------------------------------------------------------------- inflight


class Computation:
    """A factory whose result the test releases, recording calls and cancellation."""

    def __init__(self, value: str = "v", error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return self.value


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


T = TypeVar("T")


async def run(
    inflight: InFlight,
    key: str,
    factory: Callable[[], Awaitable[T]],
    timeout_s: float | None = None,
) -> tuple[T, bool]:
    """One caller the way the scorer waits: ``join``, ``asyncio.wait`` (which never cancels
    the computation), ``leave`` whatever happens. The result, and whether it was shared."""
    computation, shared = inflight.join(key, factory)
    try:
        done, _ = await asyncio.wait((computation.task,), timeout=timeout_s)
        if not done:
            raise TimeoutError
        return computation.task.result(), shared
    finally:
        inflight.leave(computation)


async def test_inflight_identical_calls_compute_once() -> None:
    inflight = InFlight()
    work = Computation("verdict")
    other = Computation("other")
    first = asyncio.create_task(run(inflight, "k", work))
    second = asyncio.create_task(run(inflight, "k", work))
    third = asyncio.create_task(run(inflight, "k2", other))
    await settle()
    assert len(inflight) == 2
    work.release.set()
    other.release.set()
    assert await first == ("verdict", False)
    assert await second == ("verdict", True)
    assert await third == ("other", False)
    assert (work.calls, other.calls) == (1, 1)
    assert len(inflight) == 0
    assert (inflight.stats.started, inflight.stats.shared) == (2, 1)


async def test_inflight_does_not_remember_finished_results() -> None:
    inflight = InFlight()
    work = Computation()
    work.release.set()
    assert await run(inflight, "k", work) == ("v", False)
    assert await run(inflight, "k", work) == ("v", False)
    assert work.calls == 2


async def test_inflight_error_reaches_every_waiter_and_is_not_kept() -> None:
    inflight = InFlight()
    failing = Computation(error=RuntimeError("engine died"))
    waiters = [asyncio.create_task(run(inflight, "k", failing)) for _ in range(3)]
    await settle()
    failing.release.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and str(o) == "engine died" for o in outcomes)
    assert failing.calls == 1
    assert len(inflight) == 0
    healthy = Computation("fine")
    healthy.release.set()
    assert await run(inflight, "k", healthy) == ("fine", False)  # recomputed, not replayed


async def test_inflight_one_waiter_cancelled_does_not_cancel_the_others() -> None:
    inflight = InFlight()
    work = Computation("v")
    first = asyncio.create_task(run(inflight, "k", work))
    second = asyncio.create_task(run(inflight, "k", work))
    await settle()
    first.cancel()  # the caller that started it goes away
    await settle()
    assert first.cancelled()
    assert work.cancelled == 0 and len(inflight) == 1
    work.release.set()
    assert await second == ("v", True)
    assert work.calls == 1


async def test_inflight_waiter_timeout_leaves_the_computation_to_others() -> None:
    inflight = InFlight()
    work = Computation("v")
    patient = asyncio.create_task(run(inflight, "k", work))
    await settle()
    with pytest.raises(TimeoutError):
        await run(inflight, "k", work, timeout_s=0.01)
    work.release.set()
    assert await patient == ("v", False)
    assert work.cancelled == 0


async def test_inflight_all_waiters_cancelled_cancels_the_computation() -> None:
    inflight = InFlight()
    work = Computation("v")
    waiters = [asyncio.create_task(run(inflight, "k", work)) for _ in range(3)]
    await settle()
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    await settle()
    assert all(w.cancelled() for w in waiters)
    assert work.cancelled == 1  # the engine work stopped
    assert len(inflight) == 0
    fresh = Computation("again")
    fresh.release.set()
    assert await run(inflight, "k", fresh) == ("again", False)


# ------------------------------------------------------------------------------------- build


async def test_build_cache_backends(tmp_path: Path) -> None:
    assert build_cache("none") is None
    memory = build_cache("memory", memory_entries=5)
    assert isinstance(memory, MemoryCache) and memory.max_entries == 5

    sqlite = build_cache("sqlite", path=tmp_path, memory_entries=5, max_entries=100)
    assert isinstance(sqlite, TieredCache) and isinstance(sqlite.back, SQLiteCache)
    assert sqlite.back.path == tmp_path / DEFAULT_SQLITE_FILENAME
    assert sqlite.back.max_entries == 100
    await sqlite.put("k", result(0.5))
    await sqlite.close()
    assert (tmp_path / DEFAULT_SQLITE_FILENAME).is_file()

    with pytest.raises(ValueError):
        build_cache("sqlite", path=None)
    with pytest.raises(ValueError):
        build_cache("redis", redis_url=None)
