"""Seconds per generated rubric: what ``POST /v1/rubrics/generate`` costs on this machine.

One fixed small request (a task and one contrastive pair, at most four criteria), run a few
times on the in-process engine after one warm-up, through the same service the route uses.
A run whose answer does not validate is counted, not hidden: the figure is the time per rubric
the judge wrote, failed or not.
"""

from __future__ import annotations

import time
from typing import Any

from judge_server.service import JudgeService
from judge_server.service.errors import GenerationFailed
from judge_server.service.generation_prompt import GenerationInput, Pair
from judge_server.service.rubric_generation import generate_rubric

REQUEST = GenerationInput(
    prompt="List three fruits, one per line, and nothing else.",
    pairs=(Pair(chosen="Apple\nBanana\nCherry", rejected="Fruits are healthy. I like apples."),),
    max_criteria=4,
)


async def rubric_generation(service: JudgeService, runs: int) -> dict[str, Any]:
    await _generate(service)  # warm-up: the schema's grammar compiled once, paths warmed
    seconds: list[float] = []
    criteria = failures = 0
    for _ in range(runs):
        started = time.perf_counter()
        written = await _generate(service)
        seconds.append(time.perf_counter() - started)
        criteria += written or 0
        failures += written is None
    return {
        "rubric_generation_s": sum(seconds) / len(seconds),
        "rubric_generation_criteria": criteria / max(1, runs - failures),
        "rubric_generation_failures": failures,
    }


async def _generate(service: JudgeService) -> int | None:
    """Criteria written, or None when the judge's answer did not validate."""
    try:
        made = await generate_rubric(service, REQUEST)
    except GenerationFailed:  # the judge's answer; a missing base rubric still stops the bench
        return None
    return len(made.criteria)
