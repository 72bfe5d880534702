"""The check workers are shared fairly between requests, and a replaced pool is joined.

The pool's queue is first come, first served: before each request got its own line, one request
of many checks that run to the deadline held every worker, and a second request's checks waited
behind all of them (here seconds; 4,096 items at the 5 s default is hours) until they timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.answers import check_answer
from judge_server.judges.items import JudgeFailure
from judge_server.judges.workers import CheckPool, check_lane
from judge_server.service.scoring import Scorer
from tests.fakes import ScriptedEngine
from tests.unit.test_check_workers import HEAVY, VERIFY

T = TypeVar("T")


class SlowThreads:
    """Checks in threads, each taking ``delay_s`` more: a slow check at the pool's seam."""

    def __init__(self, workers: int, delay_s: float) -> None:
        self._executor = ThreadPoolExecutor(workers)
        self.delay_s = delay_s
        self.active = True
        self.joined_in: list[str] = []

    def schedule(
        self, function: Callable[..., T], args: Iterable[Any] = (), *, timeout: float | None
    ) -> Future[T]:
        def slow() -> T:
            time.sleep(self.delay_s)
            return function(*args)

        return self._executor.submit(slow)

    def stop(self) -> None:
        self.active = False
        self._executor.shutdown(wait=False, cancel_futures=True)

    def join(self, timeout: float | None = None) -> None:
        self._executor.shutdown(wait=True)
        self.joined_in.append(threading.current_thread().name)


def numbers(prefix: str, n: int) -> list[JudgeItem]:
    # numeric references: the rules decide, no engine call, only the answer check in a worker
    return [JudgeItem(f"{prefix}{i}", "p", f"#### {i}", reference=str(i)) for i in range(n)]


async def second_request_latency(pool: CheckPool, busy: list[JudgeItem]) -> float:
    """Seconds a one-item request takes while another request's checks fill ``pool``."""
    judge = judge_for(VERIFY, checks=pool)
    engine = ScriptedEngine()
    await engine.start()
    scorer = Scorer(engine)
    first = asyncio.create_task(scorer.score(judge, busy, timeout_s=60))
    await asyncio.sleep(0.1)  # the first request's checks are in the pool
    start = time.perf_counter()
    [result] = await scorer.score(judge, numbers("late", 1), timeout_s=60)
    took = time.perf_counter() - start
    assert (result.status, result.reward) == ("ok", 1.0), result
    assert [r.status for r in await first] == ["ok"] * len(busy)
    return took


async def test_a_second_requests_check_starts_within_one_check_of_a_busy_pool() -> None:
    pool = CheckPool(2, 5.0, make_workers=lambda n: SlowThreads(n, delay_s=0.2))
    took = await second_request_latency(pool, numbers("busy", 20))
    # first come, first served it waited for all 20 checks (2 s); now for one at most
    assert took < 0.7, f"the second request waited {took:.2f} s"
    await asyncio.to_thread(pool.close)


@pytest.fixture(scope="module")
def real_pool() -> Iterator[CheckPool]:
    pool = CheckPool(workers=2, timeout_s=1.0)
    asyncio.run(pool.start())
    yield pool
    pool.close()


async def test_with_real_workers_a_request_of_stuck_checks_does_not_hold_them_all(
    real_pool: CheckPool,
) -> None:
    # Six checks each killed at their 1 s deadline: three rounds of both workers. The late
    # request's check now runs as soon as a worker is free, not after all six.
    done: list[str] = []

    async def stuck(i: int) -> None:
        with pytest.raises(JudgeFailure, match="deadline"):
            await real_pool.run(check_answer, HEAVY[0] + " " * i, HEAVY[1], what="check")
        done.append(f"stuck{i}")

    async def busy_request() -> None:
        with check_lane():
            await asyncio.gather(*(stuck(i) for i in range(6)))

    busy = asyncio.create_task(busy_request())
    await asyncio.sleep(0.1)  # its checks are in the pool
    with check_lane():
        late = await real_pool.run(check_answer, "#### 4", "4", what="check")
    assert late.equivalent is True
    done.append("late")
    busy.cancel()  # the rest of the stuck checks are not this test's business
    with contextlib.suppress(asyncio.CancelledError):
        await busy
    # first come, first served it came after all six; now after the first round at most
    assert done.index("late") <= 3, done


async def test_a_replaced_pool_is_joined_off_the_event_loop_and_close_joins_the_rest() -> None:
    made: list[SlowThreads] = []

    def make(n: int) -> SlowThreads:
        made.append(SlowThreads(n, delay_s=0.0))
        return made[-1]

    pool = CheckPool(2, 5.0, make_workers=make)
    assert await pool.run(int, "7", what="a check") == 7
    made[0].active = False  # as pebble's pool is once all its workers died
    assert await pool.run(int, "8", what="a check") == 8
    assert len(made) == 2 and not made[0].active
    for _ in range(100):
        if made[0].joined_in:
            break
        await asyncio.sleep(0.01)
    loop_thread = threading.current_thread().name
    assert made[0].joined_in and made[0].joined_in != [loop_thread]
    await asyncio.to_thread(pool.close)
    assert not made[1].active and len(made[1].joined_in) == 1
