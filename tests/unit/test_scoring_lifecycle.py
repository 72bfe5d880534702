"""A request's life around the cache: what it leaves for the requests beside it, what a
cancelled one still stores and counts, an engine that dies while the cache is read, and a
large request that never holds the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from judge_server.cache import CachedResult, MemoryCache, TieredCache
from judge_server.cli.bench.instant_engine import InstantEngine
from judge_server.cli.bench.workload import pointwise_rubric, short_items
from judge_server.engines.base import JudgeEngine
from judge_server.judges import Judge, JudgeItem, Judgment, judge_for
from judge_server.metrics import Metrics
from judge_server.service.scoring import Scorer


class Backend(MemoryCache):
    """A shared backend that records the keys of each batch written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[str]] = []

    async def put_many(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        self.writes.append([k for k, _ in entries])
        await super().put_many(entries)


def gated_judge(slow_id: str) -> tuple[Judge[Any], list[str], asyncio.Event]:
    """A real pointwise judge that records every item it judges; ``slow_id`` waits for the gate."""
    judge = judge_for(pointwise_rubric())
    judged: list[str] = []
    gate = asyncio.Event()
    real = judge.judge

    async def recorded(item: JudgeItem, engine: JudgeEngine) -> Judgment:
        judged.append(item.id)
        if item.id == slow_id:
            await gate.wait()
        return await real(item, engine)

    judge.judge = recorded  # type: ignore[method-assign]
    return judge, judged, gate


async def until(condition: object) -> None:
    for _ in range(1000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def items_counted(metrics: Metrics, status: str) -> float:
    return sum(
        sample.value
        for metric in metrics.registry.collect()
        if metric.name == "judge_items"
        for sample in metric.samples
        if sample.name == "judge_items_total" and sample.labels["status"] == status
    )


async def test_a_judged_item_is_a_hit_for_the_next_request_before_its_own_ends() -> None:
    back = Backend()
    scorer = Scorer(InstantEngine(), cache=TieredCache(MemoryCache(100), back))
    quick, slow = short_items(2, 0)
    judge, judged, gate = gated_judge(slow.id)
    first = asyncio.create_task(scorer.score(judge, [quick, slow], timeout_s=5))
    await until(lambda: judged == [quick.id, slow.id] and len(scorer.inflight) == 1)
    # The first request is still waiting on its slow item; the quick one is done.
    second = await scorer.score(judge, [replace(quick, id="again")], timeout_s=5)
    assert second[0].status == "ok" and second[0].cached
    assert judged.count(quick.id) == 1  # judged once, not again for the second request
    gate.set()
    assert [r.status for r in await first] == ["ok", "ok"]
    # Still one backend write per request: the first request's two, none for the hit.
    assert back.writes == [[scorer.key(judge, quick), scorer.key(judge, slow)]]


async def test_a_result_shared_from_an_uncached_request_is_cached() -> None:
    cache = MemoryCache(100)  # memory alone: the cache when no backend is configured
    scorer = Scorer(InstantEngine(), cache=cache)
    (item,) = short_items(1, 0)
    judge, judged, gate = gated_judge(item.id)
    uncached = asyncio.create_task(scorer.score(judge, [item], timeout_s=5, use_cache=False))
    await until(lambda: judged == [item.id])
    cached = asyncio.create_task(scorer.score(judge, [item], timeout_s=5))
    await until(lambda: scorer.inflight.stats.shared == 1)
    gate.set()
    assert [r.status for r in [*await uncached, *await cached]] == ["ok", "ok"]
    assert judged == [item.id] and scorer.key(judge, item) in cache


async def test_a_cancelled_request_stores_and_counts_what_it_judged() -> None:
    back = Backend()
    metrics = Metrics()
    scorer = Scorer(InstantEngine(), metrics, cache=TieredCache(MemoryCache(100), back))
    quick, slow = short_items(2, 0)
    judge, judged, _gate = gated_judge(slow.id)
    request = asyncio.create_task(scorer.score(judge, [quick, slow], timeout_s=5))
    await until(lambda: judged == [quick.id, slow.id] and len(scorer.inflight) == 1)
    await asyncio.sleep(0.05)  # the quick item's result reaches its request
    request.cancel()  # a client disconnect
    with pytest.raises(asyncio.CancelledError):
        await request
    assert back.writes == [[scorer.key(judge, quick)]]
    assert len(scorer.inflight) == 0  # the slow judgment nobody waits for was stopped
    assert items_counted(metrics, "ok") == 1
    assert sum(items_counted(metrics, s) for s in ("judge_error", "timeout")) == 0


async def test_an_engine_that_dies_while_the_cache_is_read_fails_the_items() -> None:
    scorer: Scorer

    class DiesOnRead(MemoryCache):
        async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
            scorer.fail_pending("the engine died")
            return [None] * len(keys)

    scorer = Scorer(InstantEngine(), cache=DiesOnRead())
    judge, judged, _gate = gated_judge("none")
    results = await scorer.score(judge, short_items(3, 0), timeout_s=5)
    assert [(r.status, r.reward, r.error) for r in results] == [
        ("judge_error", None, "the engine died")
    ] * 3
    assert judged == []  # nothing went to the dead engine


async def test_a_large_request_does_not_hold_the_event_loop() -> None:
    """Validation and key hashing of a request of many large items yield as they go."""

    class AllHits(MemoryCache):
        # No judging: the instant engine computes on the loop, which is not what is measured.
        async def get_many(self, keys: Sequence[str]) -> list[CachedResult | None]:
            return [CachedResult(0.5)] * len(keys)

    big = "All work and no play makes a judge a dull judge. " * 4_000  # ~200 KB
    items = [replace(item, response=big) for item in short_items(200, 0)]  # ~40 MB to hash
    scorer = Scorer(InstantEngine(), cache=AllHits())
    judge = judge_for(pointwise_rubric())
    # Counted in turns of the loop, not seconds: a loaded machine stretches every gap, but
    # an unsliced request is one or two turns however long each takes.
    turns = 0
    done = False

    async def spin() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    spinner = asyncio.create_task(spin())
    outcome = await scorer.score(judge, items, timeout_s=60)
    done = True
    await spinner
    assert [(r.status, r.cached) for r in outcome] == [("ok", True)] * len(items)
    assert turns >= 10, turns  # one per 5 ms slice of ~0.1 s or more of hashing


@pytest.mark.parametrize("starter_leaves", ["times_out", "disconnects"])
async def test_a_result_taken_after_its_starter_left_reports_its_engine_calls(
    starter_leaves: str,
) -> None:
    """Usage belongs to the first item that takes the result, not to whoever started it."""
    scorer = Scorer(InstantEngine())
    (item,) = short_items(1, 0)
    judge, judged, gate = gated_judge(item.id)
    timeout_s = 0.05 if starter_leaves == "times_out" else 5
    starter = asyncio.create_task(scorer.score(judge, [item], timeout_s=timeout_s))
    await until(lambda: judged == [item.id])
    sharer = asyncio.create_task(scorer.score(judge, [item], timeout_s=5))
    await until(lambda: scorer.inflight.stats.shared == 1)
    if starter_leaves == "disconnects":
        starter.cancel()
    outcome = await asyncio.gather(starter, return_exceptions=True)
    gate.set()
    (taken,) = await sharer
    results = [r for out in outcome if isinstance(out, list) for r in out] + [taken]
    assert taken.status == "ok"
    assert sum(r.usage.engine_calls for r in results) == 1 == taken.usage.engine_calls
    assert judged == [item.id]


async def test_a_result_whose_caching_starter_left_is_stored_by_an_uncached_sharer() -> None:
    back = Backend()
    memory = MemoryCache(100)
    scorer = Scorer(InstantEngine(), cache=TieredCache(memory, back))
    (item,) = short_items(1, 0)
    judge, judged, gate = gated_judge(item.id)
    starter = asyncio.create_task(scorer.score(judge, [item], timeout_s=5))  # caches
    await until(lambda: judged == [item.id])
    sharer = asyncio.create_task(scorer.score(judge, [item], timeout_s=5, use_cache=False))
    await until(lambda: scorer.inflight.stats.shared == 1)
    starter.cancel()  # its client disconnects before the result is ready
    await asyncio.gather(starter, return_exceptions=True)
    gate.set()
    assert [r.status for r in await sharer] == ["ok"]
    key = scorer.key(judge, item)
    assert back.writes == [[key]]  # in memory (the starter's choice) and in the backend too
    (again,) = await Scorer(InstantEngine(), cache=TieredCache(MemoryCache(100), back)).score(
        judge, [item], timeout_s=5
    )
    assert again.cached  # another replica, sharing only the backend, replays it
