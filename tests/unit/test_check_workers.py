"""CPU-bound checks run in worker processes with real deadlines, never on the event loop.

A stuck check (sympy expanding a huge power, in C where no signal reaches) is killed at its
deadline and its item is ``judge_error``; a crash or an exception in a check is ``judge_error``
too; the loop stays free meanwhile, and the pool serves the next check with a fresh worker.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import time
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.judges import JudgeFailure, JudgeItem, judge_for
from judge_server.judges.answer_guard import answer_free_judgment as answer_free_guard
from judge_server.judges.answers import check_answer
from judge_server.judges.modes import parse_rubric
from judge_server.judges.workers import CheckPool
from judge_server.rubrics.patterns import compile_pattern, search
from judge_server.rubrics.spec import RubricError
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine

T = TypeVar("T")

DEADLINE_S = 1.0
# Expanding this in sympy takes 8+ s (measured), most of it where no Python timer can stop it.
HEAVY = ("The answer is $(x+1)^{999}$.", "x^2+1")
VERIFY = parse_rubric(
    {"name": "verify", "mode": "verify", "template": "{prompt} {response} {reference} Yes?"}
)


@pytest.fixture(scope="module")
def pool() -> Iterator[CheckPool]:
    pool = CheckPool(workers=2, timeout_s=DEADLINE_S)
    asyncio.run(pool.start())  # the pool serves any event loop
    yield pool
    pool.close()


async def max_loop_gap(work: Awaitable[T]) -> tuple[T | BaseException, float]:
    """Run ``work`` while a ticker measures the longest the event loop went unserved.

    A loaded machine also leaves the loop unserved, by not scheduling the process at all, so
    a plain thread ticks beside the loop: a stretch of time the thread did not see either was
    the machine's, not the loop's, and is not counted. The GIL does not hide a blocked loop
    from the thread: Python hands it over every few milliseconds, and a blocking wait in C
    releases it.
    """
    loop_ticks: list[float] = []
    thread_ticks: list[float] = []
    done = asyncio.Event()
    stop = threading.Event()

    def thread_tick() -> None:
        while not stop.is_set():
            thread_ticks.append(time.perf_counter())
            time.sleep(0.005)

    async def tick() -> None:
        loop_ticks.append(time.perf_counter())
        while not done.is_set():
            await asyncio.sleep(0.01)
            loop_ticks.append(time.perf_counter())

    ticker_thread = threading.Thread(target=thread_tick, daemon=True)
    ticker_thread.start()
    ticker = asyncio.create_task(tick())
    try:
        result: T | BaseException = await work
    except Exception as exc:
        result = exc
    done.set()
    await ticker
    stop.set()
    ticker_thread.join()
    return result, max(
        (b - a) - machine_stall(thread_ticks, a, b) for a, b in itertools.pairwise(loop_ticks)
    )


def machine_stall(ticks: list[float], start: float, end: float) -> float:
    """The longest stretch within (start, end) in which the thread did not tick either."""
    inside = [t for t in ticks if start < t < end]
    bounds = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(bounds))


def test_a_blocked_loop_is_still_measured() -> None:
    """The stall correction must not excuse a loop that really was blocked."""

    async def blocking() -> None:
        await asyncio.sleep(0.05)
        time.sleep(0.5)  # the loop's thread blocks; the ticking thread runs on

    _, gap = asyncio.run(max_loop_gap(blocking()))
    assert gap >= 0.4


async def test_a_stuck_check_is_killed_at_its_deadline_and_the_loop_stays_free(
    pool: CheckPool,
) -> None:
    start = time.perf_counter()
    outcome, gap = await max_loop_gap(pool.run(check_answer, *HEAVY, what="the answer check"))
    took = time.perf_counter() - start
    assert isinstance(outcome, JudgeFailure)
    assert "the answer check ran past its 1 s deadline" in str(outcome)
    assert DEADLINE_S <= took < DEADLINE_S + 2.0
    assert gap < 0.2, f"the event loop was blocked {gap:.2f} s"
    # The killed worker was replaced: the next check is answered, and quickly.
    start = time.perf_counter()
    check = await pool.run(check_answer, "The answer is $x^2+1$.", "1+x^2", what="check")
    assert check.equivalent is True and check.method == "math_verify"
    assert time.perf_counter() - start < DEADLINE_S


async def test_a_crash_or_an_exception_in_a_check_is_a_failure(pool: CheckPool) -> None:
    with pytest.raises(JudgeFailure, match=r"crashed its worker \(exit code -6\)"):
        await pool.run(os.abort, what="the check")
    with pytest.raises(JudgeFailure, match="the check failed: ValueError"):
        await pool.run(int, "not a number", what="the check")
    assert (await pool.run(check_answer, "#### 18", "18", what="check")).equivalent is True


async def test_verify_items_fail_alone_and_others_get_their_verdict(pool: CheckPool) -> None:
    judge = judge_for(VERIFY, checks=pool)
    items = [
        JudgeItem("heavy", "Expand.", HEAVY[0], reference=HEAVY[1]),
        JudgeItem("right", "2+2?", "#### 4", reference="4"),
        JudgeItem("wrong", "2+2?", "The answer is 5.", reference="4"),
        JudgeItem("math", "Simplify.", "The answer is $\\frac{2}{4}x$.", reference="x/2"),
    ]
    engine = ScriptedEngine()
    await engine.start()
    results = await Scorer(engine).score(judge, items, timeout_s=30)
    by_id = {r.id: r for r in results}
    assert (by_id["heavy"].status, by_id["heavy"].reward) == ("judge_error", None)
    assert "deadline" in (by_id["heavy"].error or "")
    assert (by_id["right"].status, by_id["right"].reward) == ("ok", 1.0)
    assert (by_id["wrong"].status, by_id["wrong"].reward) == ("ok", 0.0)
    assert (by_id["math"].status, by_id["math"].reward) == ("ok", 1.0)


def composite(pattern: str, check: str = "regex_must") -> dict[str, Any]:
    return {
        "name": "inline_regex",
        "mode": "composite",
        "components": [{"check": check, "pattern": pattern}],
    }


async def test_a_catastrophic_regex_is_linear_under_re2(pool: CheckPool) -> None:
    """``^(a+)+$`` on 25 characters froze Python's ``re`` for seconds (doubling per char);
    RE2 answers it, honestly, in linear time."""
    rubric = parse_rubric(composite(r"^(a+)+$"))
    judge = judge_for(rubric, resolve=lambda name: rubric, checks=pool)
    items = [
        JudgeItem("evil", "p", "a" * 25 + "!"),
        JudgeItem("long", "p", "a" * 200_000 + "!"),
        JudgeItem("match", "p", "a" * 25),
    ]
    engine = ScriptedEngine(max_model_len=1_000_000)
    await engine.start()
    start = time.perf_counter()
    results, gap = await max_loop_gap(Scorer(engine).score(judge, items, timeout_s=30))
    assert time.perf_counter() - start < 2.0
    assert gap < 0.2
    assert isinstance(results, list)
    assert [(r.status, r.reward) for r in results] == [("ok", 0.0), ("ok", 0.0), ("ok", 1.0)]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape sequence"),
        (r"(?=a)b", "invalid perl operator"),
        (r"a{1001}", "invalid repetition size"),
        (r"(", r"missing \)"),
    ],
)
def test_patterns_re2_refuses_are_refused_at_load_with_the_reason(
    pattern: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        compile_pattern(pattern)
    with pytest.raises(RubricError, match=f"{reason}.*RE2 syntax"):
        parse_rubric(composite(pattern))


def test_an_inline_rubric_with_a_refused_pattern_is_a_422() -> None:
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), ScriptedEngine())
    with TestClient(app) as client:
        resp = client.post(
            "/v1/score",
            json={
                "rubric": composite(r"(\w+)\s\1"),
                "items": [{"id": "a", "prompt": "p", "response": "r"}],
            },
        )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_rubric" and "backreferences" in error["message"]


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"^\d+$", "42\n"),
        (r"^\d+$", "42"),
        (r"^\d+$", "42\n\n"),
        (r"done\.$", "done.\n"),
        ("x", "y\n"),
    ],
)
def test_rubric_regexes_match_like_python_at_a_final_newline(pattern: str, text: str) -> None:
    # RE2's $ is the very end; Python's also matches before one final newline, and model
    # responses often end in one: a regex_must_not must not stop firing because of it
    assert search(pattern, text) == (re.search(pattern, text) is not None)


class RecordingWorkers:
    """Threads behind the pool's seam, recording what they were given; ``expire`` makes every
    task end as a deadline does."""

    def __init__(self, expire: bool = False) -> None:
        self.expire = expire
        self.scheduled: list[str] = []
        self.active = True

    def schedule(self, function: Any, args: Any = (), *, timeout: float | None) -> Future[Any]:
        self.scheduled.append(function.__name__)
        future: Future[Any] = Future()
        if self.expire:
            future.set_exception(FutureTimeout())
        else:
            future.set_result(function(*args))
        return future

    def stop(self) -> None:
        self.active = False

    def join(self, timeout: float | None = None) -> None:
        pass


async def test_the_guard_reads_a_long_text_in_the_check_pool_with_its_deadline() -> None:
    correctness = parse_rubric(
        {"name": "c", "mode": "verdict", "template": "{prompt} {response} {reference} Right?"}
    )
    workers = RecordingWorkers()
    pool = CheckPool(workers=1, make_workers=lambda _n: workers)
    short = JudgeItem("s", "Capital of France?", "See above.", "Paris")
    assert (await answer_free_guard(correctness, short, pool)) is not None
    assert workers.scheduled == []  # a short text is read on the spot
    long = JudgeItem("a", "Capital of France?", "Let's solve this step by step. " * 400, "Paris")
    blocked = await answer_free_guard(correctness, long, pool)
    assert blocked is not None and blocked.details["answer_guard"] == "filler_only"
    assert workers.scheduled == ["_reason"]
    # Past its deadline (256K of CJK takes seconds), a long read is a failure, not a verdict.
    late = CheckPool(workers=1, make_workers=lambda _n: RecordingWorkers(expire=True))
    with pytest.raises(JudgeFailure, match="the content-free guard ran past its"):
        await answer_free_guard(correctness, long, late)
