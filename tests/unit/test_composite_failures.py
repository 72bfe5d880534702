"""A composite component that fails fails its item at once and cancels its siblings.

With ``asyncio.gather`` a failed component left the others running: the item waited for a slow
sibling (here a 10 s engine call) before failing, and the sibling's engine work was wasted.
"""

import asyncio
import time

from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.spec import RubricSpec
from judge_server.service.scoring import Scorer
from tests.fakes import ScriptedEngine


def part(name: str, marker: str) -> RubricSpec:
    # ScriptedEngine fails a prompt holding ENGINE-FAIL and sleeps 10 s on one holding SLOW
    return parse_rubric(
        {"name": name, "mode": "verdict", "template": f"{marker} {{prompt}} {{response}} Yes?"}
    )


REGISTRY = {"fails": part("fails", "ENGINE-FAIL"), "slow": part("slow", "SLOW")}


def combo(*components: str) -> RubricSpec:
    return parse_rubric(
        {
            "name": "combo",
            "mode": "composite",
            "components": [{"rubric": name} for name in components],
        }
    )


async def test_a_failing_component_cancels_its_siblings_and_the_item_fails_promptly() -> None:
    engine = ScriptedEngine()
    await engine.start()
    judge = judge_for(combo("slow", "fails"), REGISTRY.__getitem__)
    start = time.perf_counter()
    [result] = await Scorer(engine).score(judge, [JudgeItem("x", "p", "r")], timeout_s=30)
    took = time.perf_counter() - start
    assert (result.status, result.reward) == ("judge_error", None)
    assert result.error == "scripted engine failure"
    assert took < 2.0, f"the item waited {took:.1f} s for a sibling of its failed component"
    assert asyncio.all_tasks() == {asyncio.current_task()}  # the slow sibling was cancelled


async def test_a_nested_failure_keeps_its_status() -> None:
    # A component's prompt too long is the item's invalid_input, not a wrapped judge_error.
    engine = ScriptedEngine(max_model_len=64)
    await engine.start()
    registry = {**REGISTRY, "inner": combo("slow", "fails")}
    judge = judge_for(combo("inner"), registry.__getitem__)
    [result] = await Scorer(engine).score(judge, [JudgeItem("x", "p", "r" * 100)], timeout_s=30)
    assert result.status == "invalid_input", result
    assert result.error is not None and "the judge model accepts at most 63" in result.error
