"""What a request costs the engine, known before any work: admission counts engine calls, not
items (one item of a 64-criterion rubric is 64 calls, 128 with reasoning first).

The count is an upper bound from the rubric alone: a cache hit, an identical pair or a verify
item decided by the rules costs less, never more.
"""

from __future__ import annotations

from judge_server.judges import Judge, JudgeItem
from judge_server.judges.composite import CompositeJudge
from judge_server.judges.likelihood import LikelihoodSpec
from judge_server.judges.pairwise import PairwiseSpec
from judge_server.judges.process import ProcessSpec
from judge_server.judges.reward_model import RewardModelSpec
from judge_server.judges.rubric import RubricModeSpec
from judge_server.judges.simulated_user import SimulatedUserSpec
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.steps import split_steps


def _readings(rubric: RubricSpec, item: JudgeItem | None) -> int:
    """Verdict readings (or likelihood/reward-model passes) one item takes."""
    if isinstance(rubric, RubricModeSpec):
        if rubric.aggregation.method == "holistic":
            return 1
        # An item's own criteria replace the rubric's where the rubric takes them (else the
        # item is refused before any call, so the rubric's count stays an upper bound).
        if (
            item is not None
            and item.criteria is not None
            and rubric.instance_criteria != "forbidden"
        ):
            return len(item.criteria)
        return len(rubric.criteria)
    if isinstance(rubric, PairwiseSpec):
        return 2 if rubric.both_orders else 1
    if isinstance(rubric, LikelihoodSpec):
        return 2 if rubric.likelihood.normalise else 1
    if isinstance(rubric, RewardModelSpec):
        return 2 if rubric.reward_model.center_on_reference else 1
    if isinstance(rubric, SimulatedUserSpec):
        return 2 + rubric.trajectory  # before, after, and each earlier turn it tracks
    if isinstance(rubric, ProcessSpec):
        # One reading per step: the item's steps when known (linear to find), else the most
        # the rubric judges.
        if item is not None:
            return max(1, len(split_steps(item.response, rubric.split).spans))
        return rubric.split.max_steps
    return 1


def engine_calls(judge: Judge, item: JudgeItem | None = None) -> int:
    """Engine calls one item costs with ``judge`` at most: a composite its parts' (checks cost
    none), every other mode its readings, twice with reasoning (generate, then read). With
    ``item``, its own criteria count (instance criteria); without, the rubric's."""
    if isinstance(judge, CompositeJudge):
        return sum(engine_calls(sub) for _, sub in judge.parts if sub is not None)
    rubric = judge.rubric
    reads_verdicts = not isinstance(rubric, (LikelihoodSpec, RewardModelSpec))
    steps = 2 if rubric.reasoning.enabled and reads_verdicts else 1
    return _readings(rubric, item) * steps
