"""What a request costs the engine, known before any work: admission counts engine calls, not
items (one item of a 64-criterion rubric is 64 calls, 128 with reasoning first).

The count is an upper bound from the rubric alone (each mode's judge says its readings,
``Judge.readings``): a cache hit, an identical pair, a verify item decided by the rules or a
process item with fewer steps than the most the rubric judges costs less, never more.
"""

from __future__ import annotations

from judge_server.judges import Judge, JudgeItem
from judge_server.judges.composite import CompositeJudge


def engine_calls(judge: Judge, item: JudgeItem | None = None) -> int:
    """Engine calls one item costs with ``judge`` at most: a composite its parts' (checks cost
    none), every other mode its readings, twice with reasoning when each reading reads a
    verdict (generate, then read). With ``item``, its own criteria count (instance criteria);
    without, the rubric's."""
    if isinstance(judge, CompositeJudge):
        return sum(engine_calls(sub) for _, sub in judge.parts if sub is not None)
    steps = 2 if judge.rubric.reasoning.enabled and judge.reads_verdicts else 1
    return judge.readings(item) * steps
