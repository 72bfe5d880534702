"""A request's items wait on their computations together (one ``asyncio.wait``, no task per
item): what each item still gets on its own — an engine death mid-judgment, a late item beside
a quick one, a result shared with another request's identical item, and the answer's JSON.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields

from judge_server.api.protocol import ItemResultOut, ScoreResponse, UsageOut
from judge_server.api.routes_score import _ANSWER, _Answer
from judge_server.cache import InFlight
from judge_server.cli.bench.instant_engine import InstantEngine
from judge_server.cli.bench.workload import short_items
from judge_server.engines.usage import Usage
from judge_server.service.scoring import ItemResult, Scorer
from tests.unit.test_scoring_lifecycle import gated_judge, until


async def test_an_engine_that_dies_mid_judgment_fails_the_waiting_items_only() -> None:
    scorer = Scorer(InstantEngine())
    quick, slow, other = short_items(3, 0)
    judge, judged, _gate = gated_judge(slow.id)
    request = asyncio.create_task(scorer.score(judge, [quick, slow, other], timeout_s=5))
    await until(lambda: slow.id in judged and len(scorer.inflight) == 1)
    scorer.fail_pending("the engine died")
    results = await request
    assert [(r.status, r.reward, r.error) for r in results] == [
        ("ok", results[0].reward, None),
        ("judge_error", None, "the engine died"),
        ("ok", results[2].reward, None),
    ]
    assert results[0].reward is not None and len(scorer.inflight) == 0
    (later,) = await scorer.score(judge, short_items(1, 10), timeout_s=5)
    assert (later.status, later.error) == ("judge_error", "the engine died")


async def test_a_late_item_times_out_beside_a_quick_one_and_its_work_stops() -> None:
    scorer = Scorer(InstantEngine())
    quick, slow = short_items(2, 0)
    judge, _judged, _gate = gated_judge(slow.id)
    results = await scorer.score(judge, [quick, slow], timeout_s=0.05)
    assert [r.status for r in results] == ["ok", "timeout"]
    assert results[1].reward is None and results[1].error == "not judged within 0.05 s"
    await until(lambda: len(scorer.inflight) == 0)  # nobody waits: the judgment was stopped


async def test_a_shared_result_costs_its_sharer_nothing() -> None:
    scorer = Scorer(InstantEngine())
    (item,) = short_items(1, 0)
    judge, judged, gate = gated_judge(item.id)
    first = asyncio.create_task(scorer.score(judge, [item], timeout_s=5))
    await until(lambda: judged == [item.id])
    second = asyncio.create_task(scorer.score(judge, [item], timeout_s=5))
    await until(lambda: scorer.inflight.stats.shared == 1)
    gate.set()
    (mine,), (shared,) = await first, await second
    assert mine.usage.engine_calls == 1 and shared.usage == Usage()
    assert (mine.reward, mine.details) == (shared.reward, shared.details)
    assert mine.usage is not shared.usage


async def test_cancel_all_forgets_a_computation_that_never_started() -> None:
    inflight = InFlight()

    async def never() -> None:
        raise AssertionError("cancelled before it ran")

    computation, shared = inflight.join("k", never)
    assert not shared and len(inflight) == 1
    inflight.cancel_all("the engine died")
    assert len(inflight) == 0
    await asyncio.gather(computation.task, return_exceptions=True)
    assert computation.task.cancelled()
    inflight.leave(computation)  # its caller leaving afterwards is harmless


def test_the_answer_is_the_score_response_model_byte_for_byte() -> None:
    results = [
        ItemResult(
            "a",
            "ok",
            0.625,
            {"expected_score": 6.0, "distribution": {"1": 1 / 9, "9": 0.25}, "nested": [1, None]},
            usage=Usage(150, 128, 1),
        ),
        ItemResult("b", "judge_error", None, error="the judge put only 1e-05 on valid answers"),
        ItemResult("c", "ok", 1.0, {"reasoning": 'ünïcode "quoted"\n'}, cached=True),
        ItemResult("d", "timeout", None, error="not judged within 5 s"),
    ]
    rubric = {"name": "helpfulness", "version": "1.0.0+abc"}
    fast = _ANSWER.dump_json(_Answer(rubric, "Qwen/Qwen2.5-0.5B", results))
    model = ScoreResponse.model_validate(
        {"rubric": rubric, "model": "Qwen/Qwen2.5-0.5B", "results": results}, from_attributes=True
    )
    assert fast == model.model_dump_json().encode()
    # A field added to one side and not the other fails here, not on the wire.
    assert [f.name for f in fields(ItemResult)] == list(ItemResultOut.model_fields)
    assert [f.name for f in fields(Usage)] == list(UsageOut.model_fields)
    assert json.loads(fast)["results"][1]["reward"] is None
