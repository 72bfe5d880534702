"""Cache bounds (max_entries, TTL) on every tier, model-scoped keys, servers sharing one Redis,
and the cache and in-flight figures in /metrics.

Redis tests run twice: on fakeredis and on a real redis-server (``tests/redis_server.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from judge_server.cache import (
    CachedResult,
    MemoryCache,
    SQLiteCache,
)
from judge_server.cache import memory as memory_module
from judge_server.cache import redis_cache as redis_module
from judge_server.cache import sqlite as sqlite_module
from judge_server.engines.reward_models import RewardModels
from judge_server.judges import JudgeItem
from judge_server.metrics import Metrics
from judge_server.service import JudgeService, build_service
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine


def result(reward: float) -> CachedResult:
    return CachedResult(reward, {"p": reward})


class Clock:
    """A settable clock for ``time.time`` / ``time.monotonic`` of one module."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    # The module's own ``time`` only: the real clock stays for everything else.
    monkeypatch.setattr(sqlite_module, "time", SimpleNamespace(time=clock))
    return clock


# ------------------------------------------------------------------------------------- memory


async def test_memory_ttl_turns_old_results_into_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(memory_module, "time", SimpleNamespace(monotonic=clock))
    cache = MemoryCache(10, ttl_s=60)
    await cache.put("k", result(0.5))
    clock.now += 59
    assert await cache.get("k") == result(0.5)
    clock.now += 2
    assert await cache.get("k") is None
    assert (cache.stats.expired, cache.entries()) == (1, 0)
    with pytest.raises(ValueError):
        MemoryCache(10, ttl_s=0)


# ------------------------------------------------------------------------------------- sqlite


async def test_sqlite_evicts_the_oldest_writes_in_batches(tmp_path: Path, clock: Clock) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3", max_entries=100)  # batch: 5% = 5 rows
    try:
        for i in range(100):
            clock.now += 1
            await cache.put(f"k{i}", result(0.5))
        assert (cache.entries(), cache.stats.evictions) == (100, 0)
        clock.now += 1
        await cache.put("k100", result(0.5))  # one over: the 5 oldest go at once
        assert (cache.entries(), cache.stats.evictions) == (96, 5)
        assert [await cache.get(f"k{i}") is None for i in range(7)] == [True] * 5 + [False] * 2
        for i in range(101, 105):  # room for 4 more without deleting anything
            clock.now += 1
            await cache.put(f"k{i}", result(0.5))
        assert (cache.entries(), cache.stats.evictions) == (100, 5)
        rows = await cache._call(lambda c: c.execute("SELECT COUNT(*) FROM results").fetchone())
        assert rows[0] == 100
    finally:
        await cache.close()


async def test_sqlite_ttl_misses_old_rows_then_deletes_them(tmp_path: Path, clock: Clock) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3", ttl_s=3600)
    try:
        await cache.put("old", result(0.1))
        clock.now += 3599
        assert await cache.get("old") == result(0.1)
        clock.now += 2
        assert await cache.get("old") is None  # expired: a miss at once
        await cache.put("new", result(0.2))  # the next write purges it
        assert cache.stats.expired == 1 and cache.entries() == 1
        rows = await cache._call(lambda c: c.execute("SELECT key FROM results").fetchall())
        assert rows == [("new",)]
        await cache.put("old", result(0.3))  # recomputed and stored again
        assert await cache.get("old") == result(0.3)
    finally:
        await cache.close()
    with pytest.raises(ValueError):
        SQLiteCache(tmp_path / "d.sqlite3", ttl_s=0)


# -------------------------------------------------------------------------------------- redis


@pytest.fixture
def redis_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Distinct, increasing write times (real writes can share a timestamp)."""
    clock = Clock()
    ticks = itertools.count()

    def tick() -> float:
        return clock.now + next(ticks) * 0.001

    monkeypatch.setattr(redis_module, "time", SimpleNamespace(time=tick))
    return clock


async def test_redis_bound_evicts_the_oldest_batch(redis_client: Any, redis_clock: Clock) -> None:
    cache = redis_module.RedisCache(client=redis_client, max_entries=40)  # batch: 2
    for i in range(40):
        await cache.put(f"k{i}", result(i / 100))
    assert (cache.entries(), cache.stats.evictions) == (40, 0)
    await cache.put("k0", result(0.9))  # rewriting makes k0 the newest, and adds nothing
    assert cache.entries() == 40
    await cache.put("k40", result(0.4))
    assert (cache.entries(), cache.stats.evictions) == (39, 2)
    assert await redis_client.zcard(cache.index) == 39
    assert await redis_client.exists("judge:k1", "judge:k2") == 0  # gone: values and index
    assert await cache.get("k0") == result(0.9)
    assert await cache.get("k3") == result(0.03)
    with pytest.raises(ValueError):
        redis_module.RedisCache(client=redis_client, max_entries=0)


async def test_redis_ttl_expires_values_and_their_index_members(
    redis_client: Any, redis_clock: Clock
) -> None:
    cache = redis_module.RedisCache(client=redis_client, ttl_s=0.3, max_entries=100)
    await cache.put("brief", result(0.5))
    assert 0 < await redis_client.pttl("judge:brief") <= 300
    assert await cache.get("brief") == result(0.5)
    await asyncio.sleep(0.5)
    assert await cache.get("brief") is None  # Redis expired the value itself
    redis_clock.now += 61  # ...and the next write drops its index member
    await cache.put("next", result(0.6))
    assert cache.stats.expired == 1
    assert [m.decode() for m in await redis_client.zrange(cache.index, 0, -1)] == ["next"]


async def test_two_replicas_share_one_bound(redis_client: Any, redis_clock: Clock) -> None:
    one = redis_module.RedisCache(client=redis_client, max_entries=20)  # batch: 1
    two = redis_module.RedisCache(client=redis_client, max_entries=20)
    for i in range(30):
        await (one if i % 2 else two).put(f"k{i}", result(0.5))
    assert await redis_client.zcard(one.index) == 20
    present = [i for i in range(30) if await redis_client.exists(f"judge:k{i}")]
    assert present == list(range(10, 30))  # the oldest ten went, whoever wrote them


# ------------------------------------------------------------------------------ model scoping


class StandInRewardModel:
    """Only its revision is read (no rubric here uses it)."""

    ready = True

    def __init__(self, revision: str) -> None:
        self.model_revision = revision

    async def shutdown(self) -> None:
        pass


async def test_a_new_model_revision_keys_every_result_anew(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    engine.model_revision = "sha256:judge"
    reward_model: Any = StandInRewardModel("sha256:rm-1")
    settings = Settings(
        rubrics_dir=project_rubrics_dir(), watch_rubrics=False, cache_path=tmp_path / "r.sqlite3"
    )
    service = build_service(
        settings, engine=engine, reward_models=RewardModels({"skywork": reward_model})
    )
    await engine.start()
    judge = service.judge("helpfulness")

    async def cached() -> bool:
        [out] = await service.score(judge, [ITEM])
        assert out.status == "ok", out
        return out.cached

    try:
        assert not await cached() and await cached()
        engine.model_revision = "sha256:judge-2"  # the same path, other weights
        assert not await cached()
        engine.model_revision = "sha256:judge"
        assert await cached()
        reward_model.model_revision = "sha256:rm-2"  # a reward model retrained in place
        assert not await cached()
    finally:
        await service.close()


def redis_settings(url: str, **extra: Any) -> Settings:
    return Settings(
        rubrics_dir=project_rubrics_dir(),
        watch_rubrics=False,
        cache_backend="redis",
        redis_url=url,
        **extra,
    )


async def start_service(settings: Settings, revision: str) -> tuple[JudgeService, ScriptedEngine]:
    engine = ScriptedEngine()
    engine.model_revision = revision
    service = build_service(settings, engine=engine)
    await service.start()
    return service, engine


ITEM = JudgeItem(id="a", prompt="Name the largest planet.", response="Jupiter.")


async def test_two_servers_share_results_through_one_real_redis(redis_url: str) -> None:
    settings = redis_settings(redis_url)
    one, _ = await start_service(settings, "sha256:same")
    two, two_engine = await start_service(settings, "sha256:same")
    other, other_engine = await start_service(settings, "sha256:other-weights")
    try:
        judge = one.judge("helpfulness")
        [first] = await one.score(judge, [ITEM])
        assert first.status == "ok" and not first.cached
        [shared] = await two.score(two.judge("helpfulness"), [ITEM])
        assert shared.cached and shared.reward == first.reward
        assert two_engine.prompts == []
        [fresh] = await other.score(other.judge("helpfulness"), [ITEM])
        assert not fresh.cached  # same path and name, other weights: never replayed
        assert len(other_engine.prompts) > 0
    finally:
        for service in (one, two, other):
            await service.close()


async def test_settings_bound_and_expire_the_redis_cache(redis_url: str) -> None:
    service, _ = await start_service(
        redis_settings(redis_url, cache_max_entries=3, cache_ttl_s=60), "sha256:x"
    )
    try:
        judge = service.judge("helpfulness")
        items = [JudgeItem(id=str(i), prompt=f"Q{i}?", response=f"A{i}.") for i in range(5)]
        for item in items:
            await service.score(judge, [item])
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            keys = [k for k in await client.keys("judge:*") if k != b"judge:@index"]
            assert len(keys) == 3
            ttls = [await client.pttl(k) for k in keys]
            assert all(0 < ttl <= 60_000 for ttl in ttls)
        finally:
            await client.aclose()
    finally:
        await service.close()


# ------------------------------------------------------------------------------------ metrics


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_metrics_show_cache_tiers_inflight_and_model_revision(tmp_path: Path) -> None:
    settings = Settings(
        rubrics_dir=project_rubrics_dir(),
        watch_rubrics=False,
        cache_path=tmp_path / "r.sqlite3",
        cache_memory_entries=1,
    )
    engine = ScriptedEngine(delay_s=0.05)
    engine.model_revision = "sha256:abc"
    service = build_service(settings, engine=engine)
    await service.start()
    try:
        judge = service.judge("helpfulness")
        other = JudgeItem(id="b", prompt="Q?", response="A.")
        # Two identical calls at once: one computes, one joins it.
        await asyncio.gather(service.score(judge, [ITEM]), service.score(judge, [ITEM]))
        await service.score(judge, [other])  # evicts ITEM from the 1-entry memory tier
        await service.score(judge, [ITEM])  # memory miss, SQLite hit
        m = scrape(service.metrics)
        assert m[("judge_inflight_started_total", ())] == 2
        assert m[("judge_inflight_joins_total", ())] == 1
        assert m[("judge_inflight_running", ())] == 0
        assert m[("judge_cache_lookups_total", (("result", "hit"), ("tier", "sqlite")))] == 1
        assert m[("judge_cache_lookups_total", (("result", "hit"), ("tier", "all")))] == 1
        assert m[("judge_cache_lookups_total", (("result", "miss"), ("tier", "all")))] == 3
        assert m[("judge_cache_entries", (("tier", "memory"),))] == 1
        assert m[("judge_cache_entries", (("tier", "sqlite"),))] == 2
        assert m[("judge_cache_evictions_total", (("tier", "memory"),))] >= 1
        assert m[("judge_cache_evictions_total", (("tier", "sqlite"),))] == 0
        info = (
            ("model", "fake-judge"),
            ("name", ""),
            ("revision", "sha256:abc"),
            ("role", "judge"),
        )
        assert m[("judge_model_info", info)] == 1
    finally:
        await service.close()
    # A service rebuilt on the same metrics replaces its collectors instead of clashing.
    again = build_service(settings, engine=ScriptedEngine(), metrics=service.metrics)
    assert ("judge_inflight_started_total", ()) in scrape(again.metrics)
    await again.close()
